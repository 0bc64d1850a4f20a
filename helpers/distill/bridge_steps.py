"""Notebook 03's steps on the Megatron-Bridge route: `steps`' functions, for `helpers.distill.bridge` runs.

Same names and contracts as `steps` where the route allows: the run of each pruned student (a Hugging Face folder,
ws.pruned(kind)) in ws.distill_logs, its checks before launching, its curves under the NeMo route's names
("reduced_train_loss": the KD loss; "val_loss": the student's LM loss on the validation split), and the export of
each best checkpoint to ws.exported(f"{kind}-distilled") with its logits check.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from helpers.conversion.jobs import export_job
from helpers.conversion.logits import LogitsCheck
from helpers.distill import bridge, bridge_export, nodes, runs
from helpers.distill.budget import plan
from helpers.distill.live import VAL, LiveCurves
from helpers.distill.steps import CURVES, memory_estimates
from helpers.plots import color
from helpers.profiles import Profile
from helpers.run.launch import run, torchrun
from helpers.workspace import Workspace


def run_name(ws: Workspace, kind: str) -> str:
    return f"{ws.model_name}-{kind}-pruned-distill"


def run_dir(ws: Workspace, kind: str) -> Path:
    return ws.distill_logs / run_name(ws, kind)


def flags(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> list[str]:
    """Command-line flags of `helpers.distill.bridge` (those of ModelOpt's distill.py) for one student.

    With a `kd_config` it is another run (another loss), named after the YAML file, as on the NeMo 2 route.
    """
    settings, kd = profile.distill, plan(profile.distill, profile.data.seq_length)
    directory = run_dir(ws, kind).with_name(f"{run_name(ws, kind)}-{Path(kd_config).stem}") if kd_config else run_dir(ws, kind)
    args: list[object] = [
        "--student_hf_path", ws.pruned(kind), "--teacher_hf_path", ws.teacher, "--output_dir", directory,
        "--devices", settings.devices, "--tp_size", settings.tp_size, "--pp_size", settings.pp_size, "--cp_size", settings.cp_size,
        "--precision", settings.precision, "--train_iters", kd.max_steps, "--lr_warmup_iters", kd.interval,
        "--gbs", kd.gbs, "--mbs", settings.mbs, "--lr", settings.lr, "--min_lr", settings.min_lr, "--seq_length", kd.seq_length,
        "--log_interval", settings.log_interval or kd.interval, "--eval_interval", kd.interval, "--eval_iters", kd.limit_val_batches,
        "--data_paths", ws.data_prefix("train"), "--index_mapping_dir", ws.index_mapping_dir, "--num_workers", settings.num_workers,
    ]  # fmt: skip
    if kd_config:
        args += ["--kd_config", kd_config]
    if overwrite:
        args.append("--overwrite")
    return [str(a) for a in args]


def command(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> list[str]:
    return torchrun(profile.distill.devices, "helpers.distill.bridge", *flags(profile, ws, kind, kd_config, overwrite))


def best(ws: Workspace, kind: str) -> dict:
    """The `kind` run's best checkpoint: its path, step and validation loss (runs.best)."""
    return runs.best(run_dir(ws, kind))


def check_flags(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> runs.RunState:
    """The entry point's checks of the `kind` student's flags (raises SettingError); where that run stands."""
    return bridge.check(bridge.parser().parse_args(flags(profile, ws, kind, kd_config, overwrite)))


def memory_measured(profile: Profile, ws: Workspace) -> pd.DataFrame:
    """The memory estimate alone: Bridge's training loop has no hook for recording each rank's peak (the NeMo 2
    route's callback), so this route reports the estimate and says so."""
    print("Measured peaks are recorded on the NeMo 2 route only; the estimate per device:")
    return memory_estimates(profile, ws).loc[["total"]]


def write_slurm_scripts(planned: list[nodes.NodePlan], ws: Workspace, scenario: nodes.Scenario) -> list[Path]:
    """No Slurm scripts on this route yet: its entry point launches on one node (ModelOpt's distill.py does too)."""
    print("Slurm scripts are written on the NeMo 2 route; this route's entry point launches on one node.")
    return []


def run_distillation(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> dict:
    """Check the settings, then distill with torchrun (resuming an interrupted run); return the best checkpoint."""
    state = check_flags(profile, ws, kind, overwrite=overwrite)
    print(f"{run_name(ws, kind)}: {state}.")
    if state.status == "finished":
        return runs.record_best(run_dir(ws, kind), bridge.LAYOUT)
    curves = BridgeCurves(f"distilling the {kind}-pruned student", color=color(kind))
    curves.start()
    try:
        run(command(profile, ws, kind, overwrite=overwrite), ws.logs / f"03-distill-{kind}.log", on_line=curves)
    finally:
        curves.finish()
    return runs.best(run_dir(ws, kind))


def curves(ws: Workspace, kinds=None) -> pd.DataFrame:
    """Training and validation loss of each run by step (steps completed), read from the event files."""
    tables = {kind: bridge.scalars(run_dir(ws, kind)) for kind in kinds or ws.students}
    frames = [table[table["tag"].isin(CURVES)].assign(student=kind) for kind, table in tables.items()]
    return pd.concat(frames, ignore_index=True)


def _series(ws: Workspace, kind: str, tag: str) -> pd.Series:
    table = bridge.scalars(run_dir(ws, kind))
    table = table[table["tag"] == tag]
    return pd.Series(table["value"].to_numpy(), index=table["step"].to_numpy(), name=tag)


def summary(ws: Workspace, kinds=None) -> pd.DataFrame:
    """Per student: validation loss before and after distillation, and the best checkpoint."""
    rows = {}
    for kind in kinds or ws.students:
        val, best = _series(ws, kind, "val_loss"), runs.best(run_dir(ws, kind))
        rows[f"{kind}-pruned"] = {
            "val_loss before KD (step 0)": round(float(val.loc[0]), 4),
            "last val_loss": round(float(val.iloc[-1]), 4),
            "last validation step": int(val.index[-1]),
            "best val_loss": best["val_loss"],
            "best step": best["step"],
            "best checkpoint": Path(best["checkpoint"]).name,
        }
    return pd.DataFrame(rows).T


def step_seconds(ws: Workspace, kinds=None) -> dict[str, float]:
    """Median measured seconds per training step of each run (Bridge's "iteration-time", averaged per log interval)."""
    return {kind: round(float(_series(ws, kind, "train_step_timing in s").median()), 2) for kind in kinds or ws.students}


def export_students(ws: Workspace, overwrite: bool = False, kinds=None) -> dict[str, LogitsCheck]:
    """Export each student's (or each of `kinds`') best distilled checkpoint to Hugging Face with its logits check, in
    one process; print and return the checks. The pruned students are Hugging Face folders already on this route."""
    todo = {f"{kind}-distilled": export_job(ws, f"{kind}-distilled", Path(runs.best(run_dir(ws, kind))["checkpoint"])) for kind in kinds or ws.students}
    for job in todo.values():
        job.report.unlink(missing_ok=True)
    run(bridge_export.command(*todo.values(), overwrite=overwrite), ws.logs / "04-export.log")
    checks = {label: bridge_export.read_check(job.report) for label, job in todo.items()}
    for label, check in checks.items():
        print(f"{label}: {check}")
    return checks


# Bridge's log lines (megatron/bridge/training/utils/train_utils.py:640-700, eval.py:348-351), read as `live.parse`
# reads NeMo's: " [time] iteration 4/ 12 | ... | learning rate: 1.0E-03 | ... | total loss: 2.3E-02 | ..." and
# " validation loss at iteration 4 | lm loss value: 6.26E+00 | ...".
_ITERATION = re.compile(r"\biteration\s+(\d+)/\s*\d+ \|")
_TRAIN = {
    "KD loss (nats per token)": re.compile(r"\| total loss: ([-\d.eE+]+|nan|inf) \|"),
    "learning rate": re.compile(r"\| learning rate: ([-\d.eE+]+) \|"),
    "seconds per step": re.compile(r"\| elapsed time per iteration \(ms\): ([-\d.eE+]+) \|"),
}
_VALIDATION = re.compile(r"validation loss at iteration (\d+)\b.*?\| lm loss value: ([-\d.eE+]+|nan|inf) \|")


def parse(line: str) -> dict[str, tuple[int, float]]:
    """The metrics of one Bridge log line, each as (steps completed, value); {} for any other line."""
    if match := _VALIDATION.search(line):
        return {VAL: (int(match[1]), float(match[2]))}
    if not (step := _ITERATION.search(line)):
        return {}
    found = {name: (int(step[1]), float(value[1])) for name, pattern in _TRAIN.items() if (value := pattern.search(line))}
    if "seconds per step" in found:
        found["seconds per step"] = (found["seconds per step"][0], found["seconds per step"][1] / 1000)
    return found


class BridgeCurves(LiveCurves):
    """`LiveCurves` fed by Bridge's log lines."""

    def __call__(self, line: str) -> None:
        for name, (step, value) in parse(line).items():
            self.series[name][step] = value
            self._changed = True
        super().__call__("")  # no metrics of its own: the parent redraws when one is due
