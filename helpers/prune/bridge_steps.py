"""Notebook 02's steps on the Megatron-Bridge route: the `helpers.prune.bridge` commands a profile implies, and their
checks (`helpers.prune.run_pruning` launches them). Same names and contracts as `steps` (the NeMo 2 route's); the
teacher and the students are Hugging Face checkpoints (`ws.teacher`, `ws.pruned(kind)`)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.checkpoints import architecture, is_hf_checkpoint
from helpers.conversion import LogitsCheck
from helpers.errors import refuse
from helpers.launch import torchrun
from helpers.profiles import KINDS, Profile
from helpers.prune import bridge, importance
from helpers.workspace import Workspace


def targets(profile: Profile, kind: str) -> dict[str, int | tuple[int, ...]]:
    """What makes each student: ModelOpt's export config (`depth`, `width`), or the layers `drop` removes."""
    settings = profile.prune
    return {
        "depth": {"num_layers": settings.depth_num_layers},
        "width": {"ffn_hidden_size": settings.width_ffn_hidden_size, "hidden_size": settings.width_hidden_size},
        "drop": {"drop_layers": settings.drop_layers},
    }[kind]


def output(ws: Workspace, kind: str) -> Path:
    """Where a student goes: dropping named layers makes the depth student another way."""
    return ws.pruned("depth" if kind == "drop" else kind)


def flags(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> list[str]:
    """Command-line flags of `helpers.prune.bridge` (those of ModelOpt's prune_minitron.py, plus ours) for one student."""
    settings = profile.prune
    args: list[object] = ["--pp_size", settings.pp_size, "--hf_model_name_or_path", ws.teacher, "--output_hf_path", output(ws, kind)]
    if kind == "drop":  # dropping named layers needs no calibration data
        args += ["--drop_layers", *settings.drop_layers]
    else:
        args += [
            "--prune_export_config", json.dumps(targets(profile, kind)), "--seq_length", profile.data.seq_length,
            "--calib_num_samples", settings.num_train_samples, "--calib_mbs", settings.mbs,
            "--data_paths", ws.data_prefix("train"), "--index_mapping_dir", ws.index_mapping_dir,
        ]  # fmt: skip
    if overwrite:
        args.append("--overwrite")
    return [str(a) for a in args]


def command(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> list[str]:
    return torchrun(profile.prune.pp_size, "helpers.prune.bridge", *flags(profile, ws, kind, overwrite))


def is_done(path: Path, profile: Profile, kind: str) -> bool:
    """A complete pruned Hugging Face checkpoint, made as `kind` makes it, whose weights have the target sizes."""
    if not (is_hf_checkpoint(path) and all((path / name).is_file() for name in (importance.FILENAME, bridge.LOGITS_FILENAME))):
        return False
    record, wanted = importance.load(path), targets(profile, kind)
    if kind == "drop":
        return record.get("dropped_layers") == sorted(wanted["drop_layers"])
    arch = architecture(path)
    return record.get("targets") == wanted and all(getattr(arch, name) == value for name, value in wanted.items())


def check_flags(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False) -> None:
    """The entry point's checks of the `kind` student's flags (raises SettingError), before anything is launched."""
    bridge.check(bridge.parser().parse_args(flags(profile, ws, kind, overwrite)))


def students(ws: Workspace, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Each pruned student is already a Hugging Face checkpoint, proven by logits when it was written: those checks
    (`overwrite` has nothing to redo)."""
    checks = {}
    for kind in KINDS:
        report = ws.pruned(kind) / bridge.LOGITS_FILENAME
        if not report.is_file():
            raise refuse(f"{kind}-pruned student", f"{ws.pruned(kind)} has no {bridge.LOGITS_FILENAME}: it was not pruned, or not completely", f"run the {kind} pruning step first")
        checks[f"{kind}-pruned"] = LogitsCheck(**json.loads(report.read_text())["logits"])
        print(f"{kind}-pruned: {checks[f'{kind}-pruned']}")
    return checks
