"""Notebook 03's steps: the `helpers.distill` commands a profile implies, checked, launched and read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from helpers import conversion
from helpers.distill import budget, cli, events, nodes, runs
from helpers.distill.budget import memory_per_device, model_shape, plan
from helpers.distill.live import LiveCurves
from helpers.models.checkpoints import is_hf_checkpoint
from helpers.plots import color
from helpers.profiles import Profile
from helpers.run.launch import run, torchrun
from helpers.workspace import Workspace

CURVES = ("reduced_train_loss", "val_loss")


def run_name(ws: Workspace, kind: str) -> str:
    return f"{ws.model_name}-nemo-{kind}-pruned-distill"


def run_dir(ws: Workspace, kind: str) -> Path:
    return ws.distill_logs / run_name(ws, kind)


def flags(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> list[str]:
    """Command-line flags of `helpers.distill` (those of NeMo's gpt_train.py) for one student.

    With a `kd_config` it is another run (another loss: runs.IDENTITY), named after the YAML file.
    """
    settings, kd = profile.distill, plan(profile.distill, profile.data.seq_length)
    name = f"{run_name(ws, kind)}-{Path(kd_config).stem}" if kd_config else run_name(ws, kind)
    args: list[object] = [
        "--name", name, "--devices", settings.devices, "--num_nodes", settings.num_nodes,
        "--tp_size", settings.tp_size, "--pp_size", settings.pp_size, "--cp_size", settings.cp_size,
        "--model_path", ws.pruned(kind), "--teacher_path", ws.teacher, "--legacy_ckpt", "--precision", settings.precision,
        "--log_dir", ws.distill_logs, "--max_steps", kd.max_steps, "--warmup_steps", kd.interval,
        "--gbs", kd.gbs, "--mbs", settings.mbs, "--lr", settings.lr, "--min_lr", settings.min_lr,
        "--seq_length", kd.seq_length, "--log_interval", settings.log_interval or kd.interval, "--val_check_interval", kd.interval,
        "--limit_val_batches", kd.limit_val_batches, "--data_paths", ws.data_prefix("train"),
        "--index_mapping_dir", ws.index_mapping_dir, "--num_workers", settings.num_workers,
    ]  # fmt: skip
    if kd_config:
        args += ["--kd_config", kd_config]
    if overwrite:
        args.append("--overwrite")
    return [str(a) for a in args]


def command(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> list[str]:
    return torchrun(profile.distill.devices, "helpers.distill", *flags(profile, ws, kind, kd_config, overwrite))


def run_distillation(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> dict:
    """Check the settings, then distill with torchrun (resuming an interrupted run); return the best checkpoint."""
    state = check_flags(profile, ws, kind, overwrite=overwrite)
    print(f"{run_name(ws, kind)}: {state}.")
    if state.status == "finished":
        return runs.record_best(run_dir(ws, kind))
    curves = LiveCurves(f"distilling the {kind}-pruned student", color=color(kind))
    curves.start()
    try:
        run(command(profile, ws, kind, overwrite=overwrite), ws.logs / f"03-distill-{kind}.log", on_line=curves)
    finally:
        curves.finish()  # the figure stays in the cell, also when the run failed
    return runs.best(run_dir(ws, kind))


def best(ws: Workspace, kind: str) -> dict:
    """The `kind` run's best checkpoint: its path, step and validation loss (runs.best)."""
    return runs.best(run_dir(ws, kind))


def check_flags(profile: Profile, ws: Workspace, kind: str, kd_config: Path | None = None, overwrite: bool = False) -> runs.RunState:
    """The entry point's checks of the `kind` student's flags (raises SettingError); where that run stands."""
    return cli.check(cli.parser().parse_args(flags(profile, ws, kind, kd_config, overwrite)))


def export_students(ws: Workspace, overwrite: bool = False) -> dict[str, conversion.LogitsCheck]:
    """Export each student to Hugging Face (the best distilled checkpoint, and the pruned one if notebook 02 did not)."""
    sources = {}
    for kind in ws.students:
        sources[f"{kind}-distilled"] = Path(best(ws, kind)["checkpoint"])
        if overwrite or not is_hf_checkpoint(ws.exported(f"{kind}-pruned")):  # else exported and checked in notebook 02
            sources[f"{kind}-pruned"] = ws.pruned(kind)
    return conversion.export(ws, sources, ws.logs / "04-export.log", overwrite=overwrite)


def curves(ws: Workspace, kinds=None) -> pd.DataFrame:
    """Training and validation loss of each run by step (steps completed), read from the event files."""
    frames = []
    for kind in kinds or ws.students:
        table = events.scalars(run_dir(ws, kind))
        table = table[table["tag"].isin(CURVES)].assign(student=kind)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def summary(ws: Workspace, kinds=None) -> pd.DataFrame:
    """Per student: validation loss before and after distillation, and the best checkpoint."""
    rows = {}
    for kind in kinds or ws.students:
        val = events.series(run_dir(ws, kind), "val_loss")
        best = runs.best(run_dir(ws, kind))
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
    """Median measured seconds per training step of each run."""
    return {kind: round(float(events.series(run_dir(ws, kind), "train_step_timing in s").median()), 2) for kind in kinds or ws.students}


def budget_table(profile: Profile) -> pd.DataFrame:
    """The run the profile's token budget implies (`budget.plan`), with the tokens it sees, its data-parallel ranks,
    micro batch and learning rate."""
    settings = profile.distill
    kd = plan(settings, profile.data.seq_length)
    rows = vars(kd) | {
        "tokens actually seen": kd.tokens, "data-parallel ranks": budget.data_parallel_size(settings), "micro batch": settings.mbs,
        "learning rate": f"{settings.lr:g} -> {settings.min_lr:g} (cosine)",
    }  # fmt: skip
    return pd.Series(rows, name=profile.name).to_frame()


def throughput(profile: Profile) -> budget.Throughput:
    """The rate the time estimates assume: the profile's GPU (no CUDA context is made), or this CPU, measured."""
    return budget.throughput(profile.gpu)


def time_estimates(profile: Profile, ws: Workspace, rate: budget.Throughput) -> pd.DataFrame:
    """Per student on disk, at `rate`: FLOPs and seconds per step, tokens per second per node, the run's time."""
    settings, teacher = profile.distill, model_shape(ws.teacher)
    kd = plan(settings, profile.data.seq_length)
    return pd.DataFrame({kind: budget.time_estimate(model_shape(ws.pruned(kind)), teacher, kd, settings, rate) for kind in ws.students})


def bad_settings(profile: Profile) -> Profile:
    """`profile` with distillation settings the checks refuse: a global batch the micro batches cannot add up to, a
    learning-rate floor above the peak, and a validation interval beyond the end of the run."""
    settings = profile.distill
    steps = plan(settings, profile.data.seq_length).max_steps
    return replace(profile, distill=replace(settings, gbs=settings.mbs * settings.devices + 1, min_lr=settings.lr * 10, interval=steps + 1))


def memory_estimates(profile: Profile, ws: Workspace) -> pd.DataFrame:
    """Estimated memory per device (GB) of distilling each student, item by item."""
    teacher = model_shape(ws.teacher)
    tables = {kind: memory_per_device(model_shape(ws.pruned(kind)), teacher, profile.distill, profile.data.seq_length) for kind in ws.students}
    return pd.DataFrame({kind: table["GB"] for kind, table in tables.items()}).rename_axis("GB per device")


def memory_measured(profile: Profile, ws: Workspace) -> pd.DataFrame:
    """The estimate beside what each run measured: its largest rank's peak over that rank's memory before the models were built."""
    estimates = memory_estimates(profile, ws).loc["total"]
    rows = {}
    for kind in ws.students:
        ranks = runs.memory(run_dir(ws, kind))
        grown = max(rank["peak_gb"] - rank["baseline_gb"] for rank in ranks)
        rows[kind] = {"device": ranks[0]["device"], "estimated GB": estimates[kind], "measured GB": round(grown, 2), "estimate / measured": round(estimates[kind] / grown, 2)}
    return pd.DataFrame(rows).T


def multi_node_plans(
    profile: Profile, ws: Workspace, scenarios: list[nodes.Scenario], rate: budget.Throughput
) -> tuple[list[nodes.NodePlan], list]:
    """The scenarios planned for the students on disk at `rate` (`nodes.plans`), and the refusals of the others."""
    students = {kind: model_shape(ws.pruned(kind)) for kind in ws.students}
    return nodes.plans(profile, scenarios, model_shape(ws.teacher), students, rate)


def show_node_plans(profile: Profile, ws: Workspace, node_count: int, num_tokens: float, rate: budget.Throughput) -> list[nodes.NodePlan]:
    """`nodes.scenarios` planned (`multi_node_plans`): where the tokens per second per node come from, the refused
    node counts, and the table of the others, which are returned."""
    from IPython.display import display

    planned, refused = multi_node_plans(profile, ws, nodes.scenarios(profile, node_count, num_tokens), rate)
    print(nodes.efficiency_note(rate), *refused, sep="\n")
    display(nodes.table(planned))
    return planned


def slurm_script(planned: nodes.NodePlan, ws: Workspace, kind: str) -> str:
    """The Slurm batch script of one student's planned run: the flags of `flags`, on the plan's nodes."""
    scaled = planned.profile
    settings, gpus = scaled.distill, scaled.gpu is not None
    return nodes.slurm_script(flags(scaled, ws, kind), settings.num_nodes, settings.devices, gpus, ws, planned.hours(kind))


def write_slurm_scripts(planned: list[nodes.NodePlan], ws: Workspace, scenario: nodes.Scenario) -> list[Path]:
    """Write each student's `slurm_script` for `scenario` into <work directory>/slurm/ if it is among the `planned`
    (not refused); return their paths."""
    chosen = [p for p in planned if (p.kd.num_tokens, p.profile.distill.num_nodes) == (int(scenario.num_tokens), scenario.nodes)]
    if not chosen:
        print(f"No Slurm script: {scenario.nodes} node(s) cannot share this profile's global batch (above).")
        return []
    paths = []
    for kind in ws.students:
        path = ws.root / "slurm" / f"{run_name(ws, kind)}-{scenario.nodes}-nodes.sbatch"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(slurm_script(chosen[0], ws, kind))
        paths.append(path)
    return paths
