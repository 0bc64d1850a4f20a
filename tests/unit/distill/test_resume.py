"""A killed distillation run resumes from its last complete checkpoint.

Real `torchrun -m helpers.distill` runs of two small Qwen3s imported into NeMo: what is checked is the
resumption, not the learning, so this needs nothing from the notebooks and runs beside them.
"""

import subprocess
import time

import psutil

from helpers import distill, events
from helpers.distill import runs
from helpers.launch import child_env, run, torchrun
from helpers.profiles import get_profile


def first_step(event_file) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    return min(e.step + 1 for e in accumulator.Scalars("reduced_train_loss"))


def test_a_killed_run_resumes_from_its_last_checkpoint(small_nemo, tmp_path):
    ws = small_nemo
    profile = get_profile("tiny")
    settings = {"--log_dir": str(tmp_path / "runs"), "--max_steps": "4", "--val_check_interval": "2", "--warmup_steps": "2", "--log_interval": "1",
                "--gbs": "48", "--mbs": "1", "--limit_val_batches": "1"}  # fmt: skip  (24 micro-batches: a step lasts seconds)
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
            time.sleep(0.2)
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
