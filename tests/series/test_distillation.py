"""Distillation: the KD loss falls, and the best checkpoint is the one that scored best (resumption: tests/unit/distill)."""

from pathlib import Path

import pytest

from helpers import distill
from helpers.distill import runs
from helpers.distill.budget import plan
from helpers.routes import ROUTES

# The KD loss (the KL divergence from the teacher on each step's batch) of the last three steps against the first
# three: 0.51 (depth) and 0.52 (width) with the bf16 teacher, 0.41 and 0.46 with the fp32 one. Single steps scatter by
# up to ~25% around their neighbours (other batches), a mean of three by ~15%: 0.7 stays clear of the worst ratio by
# more than that. The student's own validation loss is recorded, not asserted: against `tiny`'s weak teacher it may
# rise while the student matches the teacher better (width: 7.391 -> 7.431 with the bf16 teacher; notebook 03).
KD_LOSS_FALLS = 0.7


def curve(ws, kind: str, tag: str):
    """One of the route's curves by step: "val_loss" (the student's own loss) or "reduced_train_loss" (the KD loss)."""
    table = distill.curves(ws, [kind])
    table = table[table["tag"] == tag]
    return table.set_index("step")["value"].sort_index()


STUDENTS = ROUTES["bridge"].students  # every route's students; the searched one is skipped where the route has none


def route_makes(ws, kind: str) -> None:
    if kind not in ws.students:
        pytest.skip(f"the {ws.route} route makes no {kind} student")


@pytest.mark.parametrize("kind", STUDENTS)
def test_distillation_lowers_the_kd_loss(profile, ws, require, kind):
    route_makes(ws, kind)
    require(distill.run_dir(ws, kind) / "best.json", "03")
    val = curve(ws, kind, "val_loss")
    kd = plan(profile.distill, profile.data.seq_length)
    assert list(val.index) == list(range(0, kd.max_steps + 1, kd.interval))  # before training, then every interval
    train = curve(ws, kind, "reduced_train_loss")  # the KL divergence from the teacher on each step's batch
    assert list(train.index) == list(range(1, kd.max_steps + 1))
    assert train.iloc[-3:].mean() < KD_LOSS_FALLS * train.iloc[:3].mean(), train.to_dict()


@pytest.mark.parametrize("kind", STUDENTS)
def test_the_best_checkpoint_holds_the_weights_that_scored_best(ws, require, kind):
    route_makes(ws, kind)
    run_dir = distill.run_dir(ws, kind)
    best = runs.best(require(run_dir / "best.json", "03").parent)
    val = curve(ws, kind, "val_loss").drop(index=0)  # step 0 is the pruned student: no checkpoint
    assert best["step"] == int(val.idxmin()) and best["val_loss"] == pytest.approx(val.min(), abs=1e-4)
    assert (run_dir / "best").resolve() == Path(best["checkpoint"]).resolve()
