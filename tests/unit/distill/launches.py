"""What the tests of real `helpers.distill` launches share: their short run of the tiny profile, starting it on one node
or two, and stopping it once its first checkpoint is saved."""

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from helpers.distill import nodes, runs
from helpers.profiles import get_profile
from helpers.run.launch import child_env

PROFILE = get_profile("tiny")
SETTINGS = {"max_steps": "4", "val_check_interval": "2", "warmup_steps": "2", "log_interval": "1", "gbs": "48",
            "mbs": "1", "limit_val_batches": "1"}  # fmt: skip  (24 micro-batches per step)
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def changed(flags: list[str], **values: str) -> list[str]:
    """`flags` with the values of some flags replaced: changed(flags, max_steps="6")."""
    flags = list(flags)
    for name, value in values.items():
        flags[flags.index(f"--{name}") + 1] = value
    return flags


def first_step(event_file) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    return min(e.step + 1 for e in accumulator.Scalars("reduced_train_loss"))


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start `command` in a session of its own, its output into `log`."""
    with log.open("w") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)


def start_two_nodes(
    flags: list[str], logs: Path, run_id: str, node1_flags: list[str] | None = None
) -> tuple[list[str], list[subprocess.Popen]]:
    """Two torchruns of one process each meeting by c10d on localhost, as two nodes do (node 1 with `node1_flags` if
    given): node 0's command, and both launchers.

    Node 0 starts first and is listening before node 1 starts, so that it hosts the rendezvous and, started first
    (the lower process id), is numbered 0 (torch/distributed/elastic/rendezvous/dynamic_rendezvous.py:833).
    """
    port = free_port()
    endpoint = f"localhost:{port}"
    commands = [nodes.launch(2, 1, endpoint, run_id, "helpers.distill", *each, launcher=TORCHRUN) for each in (flags, node1_flags or flags)]
    first = start(commands[0], logs / "node0.log")
    deadline = time.monotonic() + 120
    while not any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.Process(first.pid).net_connections()):
        assert first.poll() is None and time.monotonic() < deadline, (logs / "node0.log").read_text()[-3000:]
        time.sleep(0.1)
    return commands[0], [first, start(commands[1], logs / "node1.log")]


def wait_for_first_checkpoint(run_dir: Path, launchers: list[subprocess.Popen], log: Path) -> None:
    """Wait until a step's checkpoint is complete (it validates at step 2), while every launcher still runs."""
    deadline = time.monotonic() + 600
    while not any(c.step >= 2 and not c.last for c in runs.checkpoints(run_dir)):
        assert all(launcher.poll() is None for launcher in launchers), log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.2)


def kill(launcher: subprocess.Popen) -> None:
    """Kill torchrun and its workers at once, as a lost machine would stop them: no clean-up at all."""
    process = psutil.Process(launcher.pid)
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a short-lived child (a checkpoint writer's) may end first
            each.kill()
    launcher.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]
