"""A distillation run on disk: checkpoints, resume state, the best checkpoint, and its curves."""

import json
import math
import time
from types import SimpleNamespace

import pytest
from fakes import TINY, nemo_checkpoint

from helpers.distill import events, runs
from helpers.distill.callbacks import AlignLoggingStepOnResume, LogValidationBeforeTraining, StopOnNonFiniteLoss


def add_checkpoint(run_dir, val_loss, step_index, last=False, unfinished=False):
    name = f"run--val_loss={val_loss:.4f}-step={step_index}-consumed_samples={4.0 * (step_index + 1)}{'-last' if last else ''}"
    path = nemo_checkpoint(run_dir / "checkpoints" / name, TINY)
    if unfinished:
        path.with_name(name + "-unfinished").touch()
    return path


def test_checkpoint_names_give_loss_and_steps_completed(tmp_path):
    assert runs.checkpoint_filename("run") == "run--{val_loss:.4f}-{step}-{consumed_samples}"
    add_checkpoint(tmp_path, 7.75, 1)
    add_checkpoint(tmp_path, 7.70, 3, last=True)
    found = runs.checkpoints(tmp_path)
    assert [(c.val_loss, c.step, c.last) for c in found] == [(7.75, 2, False), (7.70, 4, True)]
    assert runs.state(tmp_path, 12) == runs.RunState("partial", 4, 12, 12)
    assert runs.state(tmp_path, 4).status == "finished" and runs.state(tmp_path / "none", 4).status == "new"


def test_a_run_whose_last_save_was_cut_short_resumes_from_its_newest_complete_checkpoint(tmp_path):
    # Killed while saving "-last" at step 2: the top-k checkpoint of step 2 is complete, and NeMo would not look at it.
    add_checkpoint(tmp_path, 7.94, 1)
    add_checkpoint(tmp_path, 7.95, 1, last=True, unfinished=True)
    assert runs.latest(tmp_path).step == 2 and not runs.latest(tmp_path).last
    add_checkpoint(tmp_path, 7.96, 3, last=True)
    assert runs.latest(tmp_path).step == 4 and runs.latest(tmp_path).last
    assert runs.latest(tmp_path / "none") is None


def test_a_name_lightning_versioned_still_counts(tmp_path):
    nemo_checkpoint(tmp_path / "checkpoints" / "run--val_loss=7.9419-step=1-consumed_samples=4.0-v1", TINY)
    assert [(c.val_loss, c.step, c.last) for c in runs.checkpoints(tmp_path)] == [(7.9419, 2, False)]


def test_unfinished_checkpoints_are_ignored_then_removed(tmp_path):
    add_checkpoint(tmp_path, 7.75, 1)
    half = add_checkpoint(tmp_path, 7.70, 3, unfinished=True)
    assert [c.step for c in runs.checkpoints(tmp_path)] == [2]
    assert runs.remove_unfinished(tmp_path) == [half]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [runs.checkpoints(tmp_path)[0].path.name]


def test_best_is_the_lowest_validation_loss_not_the_last(tmp_path):
    for loss, step in ((7.8, 1), (7.6, 3), (7.7, 5)):
        add_checkpoint(tmp_path, loss, step)
    add_checkpoint(tmp_path, 7.5, 5, last=True)  # "last" copies are not validated weights of their own
    record = runs.record_best(tmp_path)
    assert (record["val_loss"], record["step"]) == (7.6, 4)
    assert runs.best(tmp_path) == record == json.loads((tmp_path / "best.json").read_text())
    assert (tmp_path / "best").resolve() == runs.checkpoints(tmp_path)[1].path.resolve()


def test_best_needs_a_validated_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        runs.record_best(tmp_path)
    with pytest.raises(FileNotFoundError, match="has not finished"):
        runs.best(tmp_path)


STARTED = {"max_steps": 12, "warmup_steps": 2, "lr": 1e-3, "min_lr": 1e-4, "gbs": 4, "devices": 2}


def trainable(checkpoint):
    """The checkpoint with optimizer state beside its weights, as the runs save every checkpoint."""
    import torch
    import torch.distributed.checkpoint as dcp

    state = {f"{part}module.output_layer.weight": torch.zeros(2) for part in ("", "optimizer.state.exp_avg.")}
    dcp.save(state, checkpoint_id=str(checkpoint / "weights"), no_dist=True)
    return checkpoint


def started_run(run_dir, trained_steps, optimizer_state=True):
    runs.save_settings(run_dir, STARTED)
    checkpoint = add_checkpoint(run_dir, 7.5, trained_steps - 1, last=True)
    return trainable(checkpoint) if optimizer_state else checkpoint


def problems(run_dir, **changes):
    return [(p.setting, p.problem) for p in runs.relaunch_problems(run_dir, STARTED | changes)]


def test_a_relaunch_keeps_what_defines_the_run(tmp_path):
    started_run(tmp_path, 12)
    assert problems(tmp_path) == problems(tmp_path, devices=1) == []  # the same run, on other devices
    (refused,) = runs.relaunch_problems(tmp_path, STARTED | {"lr": 2e-3})
    assert refused.setting == "--lr" and refused.problem == f"0.002, but the run in {tmp_path} was started with 0.001"
    assert "--overwrite" in refused.fix and "only a larger --max_steps continues it, at --min_lr" in refused.fix


def test_only_the_budget_may_grow_and_the_warmup_with_it(tmp_path):
    started_run(tmp_path, 12)
    assert problems(tmp_path, max_steps=16, warmup_steps=3) == []  # the budget's own warmup follows it
    assert problems(tmp_path, warmup_steps=3) == [("--warmup_steps", f"3, but the run in {tmp_path} was started with 2")]
    ((setting, problem),) = problems(tmp_path, max_steps=8)
    assert setting == "--max_steps"
    assert problem.endswith("started with 12 steps and has trained 12: a run's budget may only grow")


def test_an_interrupted_or_extended_run_keeps_its_budget(tmp_path):
    started_run(tmp_path / "interrupted", 8)  # planned 12: the schedule decays until then
    assert [setting for setting, _ in problems(tmp_path / "interrupted", max_steps=10)] == ["--max_steps"]
    started_run(tmp_path / "extended", 14)  # extended to 16, interrupted at 14
    (refused,) = runs.relaunch_problems(tmp_path / "extended", STARTED)
    assert "has trained 14" in refused.problem and "pass --max_steps 14 to finish it" in refused.fix
    assert problems(tmp_path / "extended", max_steps=16) == []


def test_an_extension_needs_the_optimizer_state(tmp_path):
    checkpoint = started_run(tmp_path, 12, optimizer_state=False)
    assert problems(tmp_path) == []  # finished: nothing to resume
    ((setting, problem),) = problems(tmp_path, max_steps=16)
    assert setting == "--max_steps" and problem.endswith(f"from {checkpoint.name}, which holds no optimizer state")
    assert runs.holds_optimizer_state(trainable(checkpoint)) and problems(tmp_path, max_steps=16) == []


def test_a_run_without_checkpoints_is_started_again_with_the_new_settings(tmp_path):
    runs.save_settings(tmp_path, STARTED)
    assert problems(tmp_path, lr=2e-3, max_steps=4) == []


def test_a_run_without_a_record_is_judged_by_its_checkpoints(tmp_path):
    trainable(add_checkpoint(tmp_path, 7.5, 11, last=True))
    assert problems(tmp_path, lr=2e-3, max_steps=16) == []
    assert [setting for setting, _ in problems(tmp_path, max_steps=8)] == ["--max_steps"]


def test_an_extended_run_says_what_its_added_steps_train_at(tmp_path):
    started_run(tmp_path, 12)
    extended = runs.state(tmp_path, 16)
    assert extended == runs.RunState("extended", 12, 16, 12)
    assert str(extended) == (
        "at step 12, its budget grown from 12 to 16 steps: training resumes from there; the learning rate follows "
        "the run's schedule down to --min_lr at step 12 and stays there for steps 13-16"
    )
    assert runs.state(tmp_path, 12).status == "finished" and runs.state(tmp_path / "none", 16).status == "new"


def write_events(log_dir, points):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    for tag, step, value in points:
        writer.add_scalar(tag, value, step)
    writer.close()
    time.sleep(0.05)  # distinct modification times: launches are ordered by them


def test_events_merge_launches_and_count_steps_completed(tmp_path):
    # First launch: validation before training (index -1), steps 0-3; killed. The resumed launch
    # repeats step 3 onwards; its values win.
    write_events(tmp_path / "lightning_logs" / "version_0", [("val_loss", -1, 8.0), *[("reduced_train_loss", i, 8 - i / 10) for i in range(4)], ("val_loss", 1, 7.8)])
    write_events(tmp_path / "lightning_logs" / "version_1", [("reduced_train_loss", i, 7 - i / 10) for i in range(3, 6)])
    train = events.series(tmp_path, "reduced_train_loss")
    assert list(train.index) == [1, 2, 3, 4, 5, 6]
    assert train[4] == pytest.approx(6.7) and train[3] == pytest.approx(7.8)
    assert events.series(tmp_path, "val_loss").to_dict() == {0: 8.0, 2: pytest.approx(7.8)}


def test_non_finite_loss_stops_the_run():
    trainer = SimpleNamespace(global_step=7)
    StopOnNonFiniteLoss().on_train_batch_end(trainer, None, {"loss": 1.5}, None, 0)
    for bad in (math.nan, math.inf):
        with pytest.raises(FloatingPointError, match="loss is (nan|inf) at step 7.*lower --lr"):
            StopOnNonFiniteLoss().on_train_batch_end(trainer, None, {"loss": bad}, None, 0)


def test_validation_before_training_is_logged_as_step_zero():
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((metrics, step)))
    trainer = SimpleNamespace(global_step=0, callback_metrics={"val_loss": 7.9}, logger=logger)
    LogValidationBeforeTraining().on_sanity_check_end(trainer, None)
    trainer.global_step = 4  # a resumed run's sanity check is not "before training"
    LogValidationBeforeTraining().on_sanity_check_end(trainer, None)
    assert logged == [({"val_loss": 7.9}, -1)]


def test_resumed_runs_log_under_the_uninterrupted_step_numbers():
    loop = SimpleNamespace(_batches_that_stepped=3)
    trainer = SimpleNamespace(global_step=4, fit_loop=SimpleNamespace(epoch_loop=loop))
    AlignLoggingStepOnResume().on_train_start(trainer, None)
    assert loop._batches_that_stepped == 4
