"""A distillation run on disk: its settings, its checkpoints, whether it finished, and its best checkpoint.

    <log_dir>/<name>/
    ├── settings/run.json         the settings the run was started with
    ├── checkpoints/<name>--val_loss=2.5901-step=39-consumed_samples=29952.0[-last]/
    ├── lightning_logs/version_*/events.out.tfevents.*   TensorBoard scalars (one version per launch)
    ├── best.json                 the checkpoint with the lowest validation loss, chosen after training
    ├── best -> checkpoints/...   the same, as a link
    ├── memory.json               each rank of its last launch: its node, data-parallel rank, peak memory
    └── run_<N>/                  NeMo's: the run's top-level files as they were at launch N (logs, best.json...)

At every launch NeMo's logger moves the files (not the folders) at the top of the run into a new
run_<N>/ (nemo/lightning/nemo_logger.py:294-301 lists them, pytorch/callbacks/model_checkpoint.py:150-166
moves them when training starts): the settings live in a folder of their own so that they stay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import Problem
from helpers.models.checkpoints import is_nemo_checkpoint
from helpers.run.outputs import remove

SETTINGS = Path("settings") / "run.json"
BEST = "best.json"
MEMORY = "memory.json"
# Settings that define what a run trains: a relaunch must give the values it started with (`relaunch_problems`).
IDENTITY = ("model_path", "teacher_path", "kd_config", "data_paths", "split", "seq_length", "gbs", "lr", "min_lr")
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
    """Where a run stands for a launch with `max_steps`.

    A run is "extended" when `max_steps` exceeds the budget it was started with (`planned_steps`). Its
    learning rate keeps the schedule it started with: the cosine decay to --min_lr ends at `planned_steps`,
    and every added step trains at --min_lr. That is what the checkpoint restores: Lightning loads the
    scheduler's state, its `max_steps` included (lightning/pytorch/trainer/connectors/
    checkpoint_connector.py:385-393 -> torch/optim/lr_scheduler.py:199), and NeMo's schedule returns
    `min_lr` beyond it (nemo/core/optim/lr_scheduler.py:355-357). It is also the rule to keep: the added
    steps refine the annealed student where it stands, whereas warming up again to --lr would first undo
    part of what the decay gained, which a few added steps cannot repay; and an interrupted extension
    resumes on the same schedule, with nothing to remember beyond the checkpoint. For the full benefit
    of a larger budget, distill again with --overwrite: its decay then spans all the steps.
    """

    status: str  # "new", "partial" (resumable), "extended" (resumable, past the planned budget) or "finished"
    step: int
    max_steps: int
    planned_steps: int  # the budget the run was started with: its learning rate reaches --min_lr there

    def __str__(self) -> str:
        planned, steps = self.planned_steps, self.max_steps
        return {
            "new": "no checkpoint yet: training starts at step 0",
            "partial": f"interrupted at step {self.step} of {steps}: training resumes from there",
            "extended": f"at step {self.step}, its budget grown from {planned} to {steps} steps: training resumes from "
                        f"there; the learning rate follows the run's schedule down to --min_lr at step {planned} and "
                        f"stays there for steps {planned + 1}-{steps}",
            "finished": f"finished: all {steps} steps are done",
        }[self.status]  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """What differs between the entry points' runs: the flags that define a run, and its checkpoints on disk."""

    identity: tuple[str, ...]  # the settings a relaunch must repeat (`relaunch_problems`)
    steps: str  # the flag of the step budget
    warmup: str  # the flag of the learning rate's warmup
    folder: str  # the flags that name the run's folder
    checkpoints: Callable[[Path], list[Checkpoint]]  # complete checkpoints of a run, oldest step first
    resumable: Callable[[Path], bool]  # whether training can continue from a checkpoint


def state(run_dir: Path, max_steps: int, layout: Layout | None = None) -> RunState:
    layout = layout or NEMO
    saved = [c.step for c in layout.checkpoints(run_dir)]
    step = max(saved, default=0)
    started = started_with(run_dir)
    planned = started[layout.steps] if started and saved else max_steps
    resumed = "extended" if max_steps > planned else "partial"
    return RunState("finished" if step >= max_steps else resumed if saved else "new", step, max_steps, planned)


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


def relaunch_problems(run_dir: Path, settings: dict, layout: Layout | None = None) -> list[Problem]:
    """Why a launch with `settings` may not continue the run in `run_dir`: the one rule for relaunching a run.

    Everything that defines the run (IDENTITY) must be what it was started with; only the step budget,
    --max_steps, may grow (`RunState` says what the added steps train at). It may not shrink below the
    budget the run was started with (its learning rate decays over those steps) nor below the steps it
    trained. --warmup_steps follows the budget (helpers/distill/budget.py), so it must match only while
    the budget does: a grown budget keeps the run's own warmup. A run with no checkpoint has trained
    nothing that could mix: its next launch starts it again with its own settings. A run without a
    record is judged by its checkpoints alone.
    """
    layout = layout or NEMO
    found = layout.checkpoints(run_dir)
    if not found:
        return []
    started = started_with(run_dir) or settings
    budget = layout.steps
    compared = layout.identity + ((layout.warmup,) if settings[budget] == started[budget] else ())
    changed = [key for key in compared if settings.get(key) != started.get(key)]
    return [_changed(run_dir, key, settings.get(key), started.get(key), layout) for key in changed] + _budget_problems(
        run_dir, settings[budget], started[budget], found[-1], layout
    )


def _changed(run_dir: Path, key: str, value, started, layout: Layout) -> Problem:
    return Problem(
        f"--{key}",
        f"{value!r}, but the run in {run_dir} was started with {started!r}",
        f"give this run another {layout.folder}, or pass --overwrite to start it again from scratch "
        f"(a run keeps its settings: only a larger --{layout.steps} continues it, at --min_lr)",
    )


def _budget_problems(run_dir: Path, steps: int, planned: int, latest: Checkpoint, layout: Layout) -> list[Problem]:
    least, budget = max(planned, latest.step), f"--{layout.steps}"
    if steps < least:
        problem = f"{steps}, but the run in {run_dir} was started with {planned} steps and has trained {latest.step}"
        fix = f"pass {budget} {least} to finish it (more continues it at --min_lr), or --overwrite to start it again"
        return [Problem(budget, f"{problem}: a run's budget may only grow", fix)]
    if steps > latest.step and not layout.resumable(latest.path):
        problem = f"{steps} continues the run in {run_dir} from {latest.path.name}, which holds no optimizer state"
        fix = f"pass --overwrite to distill again for {steps} steps from the start (its learning rate decays over all)"
        return [Problem(budget, problem, fix)]
    return []


def holds_optimizer_state(checkpoint: Path) -> bool:
    """Whether training can continue from `checkpoint`: it holds the optimizer's state beside the weights.

    NeMo saves the final step's checkpoints without it unless told to (`save_optim_on_train_end`,
    nemo/lightning/pytorch/callbacks/model_checkpoint.py:612-618), and resuming from one fails in
    Megatron's loader: "Different dict keys encountered in `apply_factory_merges`"
    (megatron/core/dist_checkpointing/mapping.py:688, reached from megatron_strategy.py:1114-1117).
    """
    from torch.distributed.checkpoint import FileSystemReader

    keys = FileSystemReader(str(checkpoint / "weights")).read_metadata().state_dict_metadata
    return any(key.startswith("optimizer.") for key in keys)


# The runs of `python -m helpers.distill` (NeMo's layout and gpt_train.py's flags).
NEMO = Layout(IDENTITY, "max_steps", "warmup_steps", "--name (or --log_dir)", checkpoints, holds_optimizer_state)


def started_with(run_dir: Path) -> dict | None:
    """The settings the run was started with, or None if it has no record."""
    record = run_dir / SETTINGS
    return json.loads(record.read_text()) if record.is_file() else None


def save_settings(run_dir: Path, settings: dict) -> None:
    (run_dir / SETTINGS).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / SETTINGS).write_text(json.dumps(settings, indent=2))


def record_best(run_dir: Path, layout: Layout | None = None) -> dict:
    """Find the checkpoint with the lowest validation loss; write best.json and the `best` link."""
    candidates = [c for c in (layout or NEMO).checkpoints(run_dir) if not c.last and c.val_loss == c.val_loss]  # not NaN
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
    """Record each rank's place and memory: {"node", "host", "data_parallel_rank", "data_parallel_size", "device",
    "baseline_gb" (before the models were built), "peak_gb"}."""
    (run_dir / MEMORY).write_text(json.dumps(ranks, indent=2))


def memory(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / MEMORY).read_text())
