"""Notebook 02's steps on the NeMo 2 route: the `helpers.prune` commands a profile implies, and their checks
(`helpers.prune.run_pruning` launches them)."""

from __future__ import annotations

from pathlib import Path

from helpers.conversion import LogitsCheck
from helpers.conversion import export as export_to_hf
from helpers.models.checkpoints import architecture, is_nemo_checkpoint
from helpers.profiles import KINDS, Profile
from helpers.prune import cli, importance
from helpers.run.launch import torchrun
from helpers.workspace import Workspace


def targets(profile: Profile, kind: str) -> dict[str, int | tuple[int, ...]]:
    """The pruning flags that make each student: `depth`, `width`, or `drop` (depth by explicit layer numbers)."""
    settings = profile.prune
    return {
        "depth": {"target_num_layers": settings.depth_num_layers},
        "width": {"target_ffn_hidden_size": settings.width_ffn_hidden_size, "target_hidden_size": settings.width_hidden_size},
        "drop": {"drop_layers": settings.drop_layers},
    }[kind]


def flags(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> list[str]:
    """Command-line flags of `helpers.prune` (those of NeMo's gpt_prune.py) for one student."""
    settings = profile.prune
    args: list[object] = [
        "--devices", settings.devices, "--tp_size", settings.tp_size, "--pp_size", settings.pp_size,
        "--restore_path", ws.teacher, "--legacy_ckpt", "--save_path", ws.pruned("depth" if kind == "drop" else kind),
    ]  # fmt: skip
    if kind != "drop":  # dropping named layers needs no calibration data
        args += [
            "--seq_length", profile.data.seq_length, "--num_train_samples", settings.num_train_samples,
            "--mbs", settings.mbs, "--data_paths", ws.data_prefix("train"),
            "--index_mapping_dir", ws.index_mapping_dir, "--num_workers", settings.num_workers,
        ]  # fmt: skip
    for name, value in targets(profile, kind).items():
        args += [f"--{name}", *(value if isinstance(value, tuple) else [value])]
    if overwrite:
        args.append("--overwrite")
    return [str(a) for a in args]


def command(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> list[str]:
    return torchrun(profile.prune.devices, "helpers.prune", *flags(profile, ws, kind, overwrite))


def is_done(path: Path, profile: Profile, ws: Workspace, kind: str) -> bool:
    """A complete pruned checkpoint whose weights have the profile's target sizes."""
    if not (is_nemo_checkpoint(path) and (path / importance.FILENAME).is_file()):
        return False
    arch = architecture(path)
    return all(getattr(arch, name.removeprefix("target_")) == value for name, value in targets(profile, kind).items())


def output(ws: Workspace, kind: str) -> Path:
    """Where `run_pruning` looks for the `kind` student."""
    return ws.pruned(kind)


def check_flags(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> None:
    """The entry point's checks of the `kind` student's flags (raises SettingError), before anything is launched."""
    cli.check(cli.parser().parse_args(flags(profile, ws, kind, overwrite)))


def students(ws: Workspace, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Export each pruned NeMo 2 checkpoint to Hugging Face (`llm.export_ckpt`), each proven by logits."""
    pruned = {f"{kind}-pruned": ws.pruned(kind) for kind in KINDS}
    return export_to_hf(ws, pruned, log=ws.logs / "02-export.log", overwrite=overwrite)
