"""Distillation: the students improve, and the best checkpoint is the one that scored best (resumption: tests/unit/distill)."""

from pathlib import Path

import pytest

from helpers import distill, events
from helpers.distill import runs
from helpers.distill.budget import plan
from helpers.profiles import KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_distillation_lowers_the_students_validation_loss(profile, ws, require, kind):
    run_dir = require(distill.run_dir(ws, kind) / "best.json", "03").parent
    val = events.series(run_dir, "val_loss")
    kd = plan(profile.distill, profile.data.seq_length)
    assert list(val.index) == list(range(0, kd.max_steps + 1, kd.interval))  # before training, then every interval
    assert val.iloc[-1] < val.loc[0] and val.min() < val.loc[0]
    train = events.series(run_dir, "reduced_train_loss")
    assert train.index.max() == kd.max_steps and train.iloc[-1] < train.iloc[0]


@pytest.mark.parametrize("kind", KINDS)
def test_the_best_checkpoint_holds_the_weights_that_scored_best(ws, require, kind):
    run_dir = distill.run_dir(ws, kind)
    best = runs.best(require(run_dir / "best.json", "03").parent)
    val = events.series(run_dir, "val_loss").drop(index=0)  # step 0 is the pruned student: no checkpoint
    assert best["step"] == int(val.idxmin()) and best["val_loss"] == pytest.approx(val.min(), abs=1e-4)
    assert (run_dir / "best").resolve() == Path(best["checkpoint"]).resolve()
