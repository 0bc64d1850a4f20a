"""Run a command from a notebook: show it, stream what matters of its output, keep a log, raise if it fails.

IPython's `!cmd` ignores the exit status; `run` never does. What the cell shows of the output is decided by
`cell_output` (progress, phases, results, errors and the warnings to act on); the log keeps every line. A
failure raises `CommandFailed` with the last lines of the log, and interrupting the kernel stops the whole
process group.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from helpers.errors import refuse
from helpers.run.cell_output import Screen
from helpers.run.timings import Stopwatch

# torch.distributed settings a notebook kernel may hold after running NeMo in-process, and those torchrun
# gives its workers; a child launched with them would try to join the parent's process group instead of
# making its own (with TORCHELASTIC_USE_AGENT_STORE it waits, for 30 minutes, on a store nobody hosts).
_DISTRIBUTED_ENV = (
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "NODE_RANK",
    "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
)  # fmt: skip
_DISTRIBUTED_PREFIXES = ("TORCHELASTIC_",)


class CommandFailed(RuntimeError):
    """A launched command exited with a non-zero status."""

    def __init__(self, command: Sequence[str], returncode: int, log: Path, tail: str):
        self.command, self.returncode, self.log, self.tail = list(command), returncode, log, tail
        super().__init__(
            f"`{shlex.join(command)}` exited with status {returncode}.\n"
            f"Last lines of {log}:\n{tail}"
        )


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without torch.distributed or torchrun state, with unbuffered Python output
    and, on the CPU rehearsal, the allocator settings of `rehearsal.child_environment` (unless already set)."""
    from helpers import rehearsal  # imports torch: only where a command is launched

    env = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED_ENV and not k.startswith(_DISTRIBUTED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in rehearsal.child_environment().items():
        env.setdefault(key, value)
    env.update(extra or {})
    return env


def run(
    command: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 40,
) -> None:
    """Run `command` in the log's folder, showing what `cell_output.Screen` shows of each line as it comes and
    writing every line to `log`.

    `on_line` also receives every line as it arrives (a live plot, for example). The command's
    start-up and work times are appended to the log folder's records (`timings`).

    The folder is the working directory so that files NeMo writes relative to it (its default
    `nemo_experiments/` logs) land beside the log, not in the notebooks' folder.
    """
    command = [str(part) for part in command]
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ {shlex.join(command)}\n  (full output: {log})", flush=True)
    tail: deque[str] = deque(maxlen=tail_lines)
    stopwatch, screen = Stopwatch(), Screen()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        env=child_env(env),
        cwd=log.parent,
        start_new_session=True,  # one process group: torchrun and its workers stop together
    )
    keep_priority(process.pid)
    try:
        with log.open("w") as log_file:
            for line in process.stdout:
                log_file.write(line)
                tail.append(line)
                stopwatch.line(line)
                screen(line)
                if on_line:
                    on_line(line)
        returncode = process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        screen.end_bar()
    if returncode != 0:
        raise CommandFailed(command, returncode, log, "".join(tail))
    stopwatch.record(log)
    screen.finish(log)


def keep_priority(pid: int) -> None:
    """Give a child started in a new session this process's CPU priority.

    On Linux with autogroup scheduling (the default of most distributions), a new session is a new
    scheduling group whose CPU share ignores the nice value it inherited: torchrun's workers under
    `nice make run` would compete with everything else at full weight. Copying this process's group
    nice (`/proc/<pid>/autogroup`, sched(7)) keeps them yielding. Without autogroups the inherited
    nice value already applies.
    """
    try:
        nice = group_nice(Path("/proc/self/autogroup").read_text())
        if nice:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:  # no autogroup, or the child has already exited
        pass


def group_nice(autogroup: str) -> int:
    """The group priority a child's new group needs, from this process's `/proc/self/autogroup` line.

    That is the group's nice value ("/autogroup-25 nice 7"). The kernel prints nothing for a process in
    the root group, one whose session never left init's, as in many containers (kernel/sched/autogroup.c,
    proc_sched_autogroup_show_task): there the process competes by its own nice value.
    """
    fields = autogroup.split()
    return int(fields[-1]) if fields else os.nice(0)


def _stop(process: subprocess.Popen) -> None:
    """Stop the command and everything it started (SIGTERM, then SIGKILL after 30 s)."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def is_rank0() -> bool:
    """Whether this process is rank 0 of a torchrun launch (or not launched by torchrun): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0


def rank0_first(work: Callable[[], None], key: str, timeout_minutes: int = 60) -> None:
    """Run `work` on rank 0 while every other rank of the torchrun launch waits for it to finish.

    For work that changes files the other ranks are about to read (removing a run, or a checkpoint
    interrupted mid-save) before any process group exists. The ranks meet on torchrun's own
    key-value store at MASTER_ADDR:MASTER_PORT (the agent's, or rank 0's multi-tenant one, which
    the process group reuses later). If `work` raises on rank 0, the other ranks raise too.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        work()
        return
    from datetime import timedelta

    from torch.distributed import PrefixStore
    from torch.distributed.rendezvous import _create_c10d_store

    rank = int(os.environ["RANK"])
    store = PrefixStore(
        f"helpers/{key}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}",
        _create_c10d_store(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), rank, world, timedelta(minutes=timeout_minutes)),
    )
    if rank == 0:
        outcome = "done"
        try:
            work()
        except BaseException as error:
            outcome = f"rank 0 failed: {error!r}"
            raise
        finally:
            store.set("outcome", outcome)
    else:
        store.wait(["outcome"])
        outcome = store.get("outcome").decode()
        if outcome != "done":
            raise RuntimeError(f"{key}: {outcome}")


def require_launched(devices: int, num_nodes: int) -> None:
    """Refuse to start unless torchrun launched the processes `--devices` x `--num_nodes` ask for."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != devices * num_nodes:
        raise refuse(
            "--devices",
            f"{launched} process(es) were launched for --devices {devices} x --num_nodes {num_nodes}",
            f"launch with torchrun --nproc_per_node {devices}",
        )


def python_module(module: str, *args: object) -> list[str]:
    """`python -m module args...` with the kernel's own interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]


def torchrun(nproc_per_node: int, module: str, *args: object) -> list[str]:
    """`torchrun --standalone --nproc_per_node N -m module args...`: one node, a free port."""
    beside_python = Path(sys.executable).with_name("torchrun")
    launcher = str(beside_python) if beside_python.exists() else "torchrun"
    return [launcher, "--standalone", "--nproc_per_node", str(nproc_per_node), "-m", module, *map(str, args)]
