"""Notebook 02's steps: the `helpers.prune` commands a profile implies, checked, then launched."""

from __future__ import annotations

from pathlib import Path

from helpers.checkpoints import architecture, is_nemo_checkpoint
from helpers.conversion import LogitsCheck
from helpers.conversion import export as export_to_hf
from helpers.errors import SettingError
from helpers.launch import run, torchrun
from helpers.profiles import KINDS, Profile
from helpers.prune import cli, importance
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


def is_done(path: Path, profile: Profile, kind: str) -> bool:
    """A complete pruned checkpoint whose weights have the profile's target sizes."""
    if not (is_nemo_checkpoint(path) and (path / importance.FILENAME).is_file()):
        return False
    arch = architecture(path)
    return all(getattr(arch, name.removeprefix("target_")) == value for name, value in targets(profile, kind).items())


def run_pruning(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> Path:
    """Check the settings, then prune with torchrun; reuse a finished student unless `overwrite`."""
    output = ws.pruned(kind)
    if not overwrite and is_done(output, profile, kind):
        print(f"Reusing the {kind}-pruned student at {output} (set OVERWRITE = True to prune again).")
        return output
    replace = overwrite or output.exists()  # a stale or differently-pruned student is replaced
    cli.check(cli.parser().parse_args(flags(profile, ws, kind, replace)))  # refuses before launching
    run(command(profile, ws, kind, replace), ws.logs / f"02-prune-{kind}.log")
    return output


def refusal(profile: Profile, ws: Workspace, kind: str) -> str | None:
    """The entry point's refusal of the `kind` student's flags under `profile`, or None if they pass."""
    try:
        cli.check(cli.parser().parse_args(flags(profile, ws, kind)))
    except SettingError as error:
        return str(error)
    return None


def students(ws: Workspace, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Export each pruned NeMo 2 checkpoint to Hugging Face (`llm.export_ckpt`), each proven by logits."""
    pruned = {f"{kind}-pruned": ws.pruned(kind) for kind in KINDS}
    return export_to_hf(ws, pruned, log=ws.logs / "02-export.log", overwrite=overwrite)
