"""Distillation: the students improve, the best checkpoint is the one that scored best, and a killed run resumes."""

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from helpers import distill, events
from helpers.distill import runs
from helpers.distill.budget import plan
from helpers.launch import child_env, run, torchrun
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


def first_step(event_file) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    return min(e.step + 1 for e in accumulator.Scalars("reduced_train_loss"))


def test_a_killed_run_resumes_from_its_last_checkpoint(profile, ws, require, tmp_path):
    require(ws.pruned("depth"), "02")
    settings = {"--log_dir": str(tmp_path / "runs"), "--max_steps": "4", "--val_check_interval": "2", "--warmup_steps": "2", "--log_interval": "1",
                "--gbs": "2", "--mbs": "1", "--limit_val_batches": "1"}  # fmt: skip  (what is checked is the resumption, not the learning)
    flags = distill.flags(profile, ws, "depth")
    for flag, value in settings.items():
        flags[flags.index(flag) + 1] = value
    command = torchrun(profile.distill.devices, "helpers.distill", *flags)
    run_dir = tmp_path / "runs" / distill.run_name(ws, "depth")

    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
        deadline = time.monotonic() + 600
        while not any(c.step >= 2 and not c.last for c in runs.checkpoints(run_dir)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(1)
        launcher = psutil.Process(first.pid)
        for process in [launcher, *launcher.children(recursive=True)]:
            process.kill()  # torchrun and its workers, as a lost machine: no clean-up at all
        first.wait()
    for checkpoint in runs.checkpoints(run_dir):
        if checkpoint.last:  # as if the kill had cut its save short (NeMo's marker stays): the harder resumption
            checkpoint.path.with_name(checkpoint.path.name + "-unfinished").touch()
    assert not any(c.last for c in runs.checkpoints(run_dir))  # NeMo's own resumption has nothing to find
    interrupted = runs.state(run_dir, 4)
    assert interrupted.status == "partial" and 2 <= interrupted.step < 4

    run(command, tmp_path / "second.log")
    assert f"interrupted at step {interrupted.step} of 4" in (tmp_path / "second.log").read_text()
    assert runs.state(run_dir, 4).status == "finished" and runs.best(run_dir)["step"] in (2, 4)
    launches = events.event_files(run_dir)
    assert len(launches) == 2 and first_step(launches[-1]) == interrupted.step + 1  # continued, not restarted
    train = events.series(run_dir, "reduced_train_loss")
    assert list(train.index) == [1, 2, 3, 4]  # each step once
    assert list(events.series(run_dir, "val_loss").index) == [0, 2, 4]
