"""A killed distillation run resumes from its last complete checkpoint; a finished one continues with a larger budget.

Real `torchrun -m helpers.distill` runs of two small Qwen3s imported into NeMo: what is checked is the
resumption, not the learning, so this needs nothing from the notebooks and runs beside them. One run
serves every test: killed, resumed to the end, then relaunched with other settings.
"""

from types import SimpleNamespace

import pytest
from launches import PROFILE, SETTINGS, changed, first_step, kill, start, wait_for_first_checkpoint

from helpers import distill
from helpers.distill import cli, events, runs
from helpers.run.launch import run, torchrun


def command(flags: list[str]) -> list[str]:
    return torchrun(PROFILE.distill.devices, "helpers.distill", *flags)


def kill_after_first_checkpoint(flags: list[str], run_dir, log) -> None:
    """Launch the run and kill torchrun and its workers, as a lost machine would, once a step's checkpoint is saved."""
    launcher = start(command(flags), log)
    wait_for_first_checkpoint(run_dir, [launcher], log)
    kill(launcher)


@pytest.fixture(scope="module")
def resumed(small_nemo, tmp_path_factory):
    """The run killed after its first checkpoint and relaunched to the end, with what the relaunch left.

    Recorded before any test relaunches the run again.
    """
    ws, logs = small_nemo, tmp_path_factory.mktemp("resume")
    flags = changed(distill.flags(PROFILE, ws, "depth"), log_dir=str(logs / "runs"), **SETTINGS)
    run_dir = logs / "runs" / distill.run_name(ws, "depth")

    kill_after_first_checkpoint(flags, run_dir, logs / "first.log")
    for checkpoint in runs.checkpoints(run_dir):
        if checkpoint.last:  # as if the kill had cut its save short (NeMo's marker stays): the harder resumption
            checkpoint.path.with_name(checkpoint.path.name + "-unfinished").touch()
    assert not any(c.last for c in runs.checkpoints(run_dir))  # NeMo's own resumption has nothing to find
    interrupted = runs.state(run_dir, 4)

    run(command(flags), logs / "second.log")
    return SimpleNamespace(
        flags=flags, run_dir=run_dir, interrupted=interrupted, log=(logs / "second.log").read_text(),
        state=runs.state(run_dir, 4), best=runs.best(run_dir), launches=events.event_files(run_dir),
        train=events.series(run_dir, "reduced_train_loss"), val=events.series(run_dir, "val_loss"),
    )  # fmt: skip


def test_a_killed_run_resumes_from_its_last_checkpoint(resumed):
    interrupted = resumed.interrupted
    assert interrupted.status == "partial" and 2 <= interrupted.step < 4
    assert f"interrupted at step {interrupted.step} of 4" in resumed.log
    assert resumed.state.status == "finished" and resumed.best["step"] in (2, 4)
    assert len(resumed.launches) == 2
    assert first_step(resumed.launches[-1]) == interrupted.step + 1  # continued, not restarted
    assert list(resumed.train.index) == [1, 2, 3, 4]  # each step once
    assert list(resumed.val.index) == [0, 2, 4]


def test_a_finished_run_continues_at_min_lr_with_a_larger_budget_and_nothing_else_may_change(resumed, tmp_path, capsys):
    flags, run_dir = resumed.flags, resumed.run_dir
    lr, min_lr = (float(flags[flags.index(flag) + 1]) for flag in ("--lr", "--min_lr"))
    before = sorted(run_dir.rglob("*"))
    assert (run_dir / "run_0").is_dir() and runs.started_with(run_dir)["max_steps"] == 4  # NeMo moved the top files

    assert cli.main(changed(flags, lr=repr(2 * lr), max_steps="6")) == 2
    refusal = capsys.readouterr().err
    assert f"--lr: {2 * lr!r}, but the run in {run_dir} was started with {lr!r}" in refusal
    assert "--max_steps:" not in refusal  # the budget may grow
    assert cli.main(changed(flags, max_steps="3")) == 2
    refusal = capsys.readouterr().err
    assert "--max_steps: 3, but the run in" in refusal and "has trained 4: a run's budget may only grow" in refusal
    assert sorted(run_dir.rglob("*")) == before  # refused before anything was written

    run(command(changed(flags, max_steps="6")), tmp_path / "third.log")
    assert "its budget grown from 4 to 6 steps" in (tmp_path / "third.log").read_text()
    assert runs.state(run_dir, 6).status == "finished" and runs.started_with(run_dir)["max_steps"] == 4
    assert list(events.series(run_dir, "reduced_train_loss").index) == [1, 2, 3, 4, 5, 6]
    assert list(events.series(run_dir, "val_loss").index) == [0, 2, 4, 6]
    learning_rate = events.series(run_dir, "lr")
    assert learning_rate[3] == pytest.approx(lr) and learning_rate[5] == learning_rate[6] == pytest.approx(min_lr)
    assert all(runs.holds_optimizer_state(c.path) for c in runs.checkpoints(run_dir))  # it can grow again
