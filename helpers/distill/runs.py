"""A distillation run on disk: its settings, its checkpoints, whether it finished, and its best checkpoint.

    <log_dir>/<name>/
    ├── run.json                  the settings the run was started with
    ├── checkpoints/<name>--val_loss=2.5901-step=39-consumed_samples=29952.0[-last]/
    ├── lightning_logs/version_*/events.out.tfevents.*   TensorBoard scalars (one version per launch)
    ├── best.json                 the checkpoint with the lowest validation loss, chosen after training
    ├── best -> checkpoints/...   the same, as a link
    └── memory.json               peak memory of each rank during its last launch
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from helpers.checkpoints import is_nemo_checkpoint
from helpers.errors import Problem
from helpers.outputs import remove

SETTINGS = "run.json"
BEST = "best.json"
MEMORY = "memory.json"
# Settings that define what a run trains; resuming with different values would mix two runs.
IDENTITY = ("model_path", "teacher_path", "kd_config", "data_paths", "split", "seq_length", "gbs", "max_steps", "lr", "min_lr", "warmup_steps")
# Lightning appends -v1, -v2... to a name that is taken (a run restarted from an earlier step saves the same names).
_NAME = re.compile(r"--val_loss=(?P<val_loss>[-\d.]+|nan|inf)-step=(?P<step>\d+)-consumed_samples=(?P<samples>[\d.]+)(?P<last>-last)?(-v\d+)?$")


def checkpoint_filename(name: str) -> str:
    """The ModelCheckpoint filename pattern: validation loss and step in every checkpoint's name."""
    return f"{name}--{{val_loss:.4f}}-{{step}}-{{consumed_samples}}"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    val_loss: float
    step: int  # optimizer steps completed (the name holds the 0-based index of the last step)
    last: bool


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints of the run, oldest step first."""
    found = []
    for path in sorted((run_dir / "checkpoints").glob("*")):
        match = _NAME.search(path.name)
        unfinished = path.with_name(path.name + "-unfinished").exists()  # NeMo's marker while saving
        if match and is_nemo_checkpoint(path) and not unfinished:
            found.append(Checkpoint(path, float(match["val_loss"]), int(match["step"]) + 1, bool(match["last"])))
    return sorted(found, key=lambda c: (c.step, c.last))


def latest(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint, "-last" or not: where an interrupted run resumes."""
    found = checkpoints(run_dir)  # oldest step first, "-last" after the top-k copy of its step
    return found[-1] if found else None


@dataclass(frozen=True)
class RunState:
    status: str  # "new", "partial" (resumable) or "finished"
    step: int
    max_steps: int

    def __str__(self) -> str:
        return {
            "new": "no checkpoint yet: training starts at step 0",
            "partial": f"interrupted at step {self.step} of {self.max_steps}: training resumes from there",
            "finished": f"finished: all {self.max_steps} steps are done",
        }[self.status]


def state(run_dir: Path, max_steps: int) -> RunState:
    saved = [c.step for c in checkpoints(run_dir)]
    step = max(saved, default=0)
    status = "finished" if step >= max_steps else "partial" if saved else "new"
    return RunState(status, step, max_steps)


def remove_unfinished(run_dir: Path) -> list[Path]:
    """Delete checkpoints an interruption left half-written (NeMo marks them `<name>-unfinished`).

    NeMo refuses to resume while the newest checkpoint is unfinished and asks for it to be removed
    by hand; removing it resumes from the last complete one instead.
    """
    removed = []
    for marker in sorted((run_dir / "checkpoints").glob("*-unfinished")):
        checkpoint = marker.with_name(marker.name.removesuffix("-unfinished"))
        remove(checkpoint)
        remove(marker)
        removed.append(checkpoint)
    return removed


def settings_problems(run_dir: Path, settings: dict) -> list[Problem]:
    """Differences between a run already in `run_dir` and the settings of a new launch."""
    saved_file = run_dir / SETTINGS
    if not saved_file.is_file():
        return []
    saved = json.loads(saved_file.read_text())
    return [
        Problem(
            f"--{key}",
            f"{settings.get(key)!r}, but the run in {run_dir} was started with {saved.get(key)!r}",
            "give this run another --name (or --log_dir), or pass --overwrite to start it again from scratch",
        )
        for key in IDENTITY
        if saved.get(key) != settings.get(key)
    ]


def save_settings(run_dir: Path, settings: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SETTINGS).write_text(json.dumps(settings, indent=2))


def record_best(run_dir: Path) -> dict:
    """Find the checkpoint with the lowest validation loss; write best.json and the `best` link."""
    candidates = [c for c in checkpoints(run_dir) if not c.last and c.val_loss == c.val_loss]  # not NaN
    if not candidates:
        raise FileNotFoundError(f"{run_dir} has no validated checkpoint")
    best = min(candidates, key=lambda c: (c.val_loss, -c.step))
    record = {"checkpoint": str(best.path), "val_loss": best.val_loss, "step": best.step}
    (run_dir / BEST).write_text(json.dumps(record, indent=2))
    link = run_dir / "best"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(best.path.relative_to(run_dir))
    return record


def best(run_dir: Path) -> dict:
    """The best checkpoint recorded after training: {"checkpoint", "val_loss", "step"}."""
    record = run_dir / BEST
    if not record.is_file():
        raise FileNotFoundError(f"{record} is missing: the distillation run has not finished")
    return json.loads(record.read_text())


def save_memory(run_dir: Path, ranks: list[dict]) -> None:
    """Record each rank's memory: {"device", "baseline_gb" (before the models were built), "peak_gb"}."""
    (run_dir / MEMORY).write_text(json.dumps(ranks, indent=2))


def memory(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / MEMORY).read_text())
