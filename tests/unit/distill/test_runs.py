"""A distillation run on disk: checkpoints, resume state, the best checkpoint, and its curves."""

import json
import math
import time
from types import SimpleNamespace

import pytest
from fakes import TINY, nemo_checkpoint

from helpers import events
from helpers.distill import runs
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
    assert runs.state(tmp_path, 12) == runs.RunState("partial", 4, 12)
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


def test_settings_that_define_the_run_must_match(tmp_path):
    runs.save_settings(tmp_path, {"max_steps": 12, "lr": 1e-3, "devices": 2})
    assert runs.settings_problems(tmp_path, {"max_steps": 12, "lr": 1e-3, "devices": 1}) == []  # devices may change
    (problem,) = runs.settings_problems(tmp_path, {"max_steps": 40, "lr": 1e-3})
    assert problem.setting == "--max_steps" and "--overwrite" in problem.fix


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
