"""Notebook 02's steps on the Megatron-Bridge route: the `helpers.prune.bridge` commands a profile implies, and their
checks (`helpers.prune.run_pruning` launches them). Same names and contracts as `steps` (the NeMo 2 route's); the
teacher and the students are Hugging Face checkpoints (`ws.teacher`, `ws.pruned(kind)`)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.conversion import LogitsCheck
from helpers.errors import refuse
from helpers.models.checkpoints import architecture, is_hf_checkpoint, parameter_counts
from helpers.profiles import KINDS, Profile
from helpers.prune import bridge, importance, search
from helpers.routes import SEARCHED
from helpers.run.launch import run, torchrun
from helpers.workspace import Workspace


def budget(profile: Profile, ws: Workspace) -> int:
    """The searched student's parameter budget: the profile's, or the larger hand-picked student's size (so that the
    three compare at about equal size)."""
    if profile.prune.search.params:
        return int(profile.prune.search.params)
    missing = [kind for kind in KINDS if not is_hf_checkpoint(ws.pruned(kind))]
    if missing:
        raise refuse(f"{SEARCHED} student", f"its budget is the larger hand-picked student's size, and {' and '.join(missing)} is not pruned yet", "prune the depth and width students first")
    return max(parameter_counts(ws.pruned(kind))["total"] for kind in KINDS)


def search_flags(profile: Profile, ws: Workspace, params: int) -> list[object]:
    """The flags of a search to `params` parameters, as the profile sets it."""
    settings = profile.prune.search
    args: list[object] = [
        "--prune_target_params", params, "--prune_score_func", settings.score_func,
        "--max_width_pruning", settings.max_width_pruning, "--max_depth_pruning", settings.max_depth_pruning, "--top_k", settings.top_k,
    ]  # fmt: skip
    if settings.hparams_to_skip:
        args += ["--hparams_to_skip", *settings.hparams_to_skip]
    if settings.channel_divisor:
        args += ["--ss_channel_divisor", settings.channel_divisor]
    if settings.score_func == "val_loss":
        args += ["--score_data_path", ws.data_prefix("validation"), "--score_num_samples", settings.score_num_samples]
    return args


def targets(profile: Profile, kind: str) -> dict[str, int | tuple[int, ...]]:
    """What makes each hand-picked student: ModelOpt's export config (`depth`, `width`), or the layers `drop` removes."""
    settings = profile.prune
    return {
        "depth": {"num_layers": settings.depth_num_layers},
        "width": {"ffn_hidden_size": settings.width_ffn_hidden_size, "hidden_size": settings.width_hidden_size},
        "drop": {"drop_layers": settings.drop_layers},
    }[kind]


def output(ws: Workspace, kind: str) -> Path:
    """Where a student goes: dropping named layers makes the depth student another way."""
    return ws.pruned("depth" if kind == "drop" else kind)


def flags(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False, params: int | None = None) -> list[str]:
    """Command-line flags of `helpers.prune.bridge` (those of ModelOpt's prune_minitron.py, plus ours) for one student;
    the searched one's budget is `params` if given (the dry run plans it), else `budget`."""
    settings = profile.prune
    args: list[object] = ["--pp_size", settings.pp_size, "--hf_model_name_or_path", ws.teacher, "--output_hf_path", output(ws, kind)]
    if kind == "drop":  # dropping named layers needs no calibration data
        args += ["--drop_layers", *settings.drop_layers]
    else:
        target = search_flags(profile, ws, params or budget(profile, ws)) if kind == SEARCHED else ["--prune_export_config", json.dumps(targets(profile, kind))]
        args += [
            *target, "--seq_length", profile.data.seq_length,
            "--calib_num_samples", settings.num_train_samples, "--calib_mbs", settings.mbs,
            "--data_paths", ws.data_prefix("train"), "--index_mapping_dir", ws.index_mapping_dir,
        ]  # fmt: skip
    if overwrite:
        args.append("--overwrite")
    return [str(a) for a in args]


def command(profile: Profile, ws: Workspace, kind: str, overwrite: bool = False, params: int | None = None) -> list[str]:
    return torchrun(profile.prune.pp_size, "helpers.prune.bridge", *flags(profile, ws, kind, overwrite, params))


def is_done(path: Path, profile: Profile, ws: Workspace, kind: str) -> bool:
    """A complete pruned Hugging Face checkpoint, made as `kind` makes it, whose weights have the target sizes."""
    if not (is_hf_checkpoint(path) and all((path / name).is_file() for name in (importance.FILENAME, bridge.LOGITS_FILENAME))):
        return False
    record = importance.load(path)
    if kind == SEARCHED:
        params = budget(profile, ws)
        return record.get("targets") == {"params": params} and (path / search.RECORD).is_file() and parameter_counts(path)["total"] <= params
    wanted = targets(profile, kind)
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
    for kind in ws.students:
        report = ws.pruned(kind) / bridge.LOGITS_FILENAME
        if not report.is_file():
            raise refuse(f"{kind}-pruned student", f"{ws.pruned(kind)} has no {bridge.LOGITS_FILENAME}: it was not pruned, or not completely", f"run the {kind} pruning step first")
        checks[f"{kind}-pruned"] = LogitsCheck(**json.loads(report.read_text())["logits"])
        print(f"{kind}-pruned: {checks[f'{kind}-pruned']}")
    return checks


SCORES = "02-search-scores.json"  # in ws.results: each pruned student scored with the search's function


def score_command(profile: Profile, ws: Workspace) -> list[str]:
    """`helpers.prune.scores` of every pruned student, with the search's score function and settings, in one process:
    a student's layers need not split into the search's pipeline stages (SmolLM2's 21 do not into 2)."""
    settings = profile.prune.search
    args: list[object] = ["--pp_size", 1, "--hf_model_name_or_path", *(ws.pruned(kind) for kind in ws.students),
                          "--prune_score_func", settings.score_func, "--report", ws.results / SCORES]  # fmt: skip
    if settings.score_func == "val_loss":
        args += ["--score_data_path", ws.data_prefix("validation"), "--score_num_samples", settings.score_num_samples,
                 "--seq_length", profile.data.seq_length, "--mbs", profile.prune.mbs]  # fmt: skip
    return torchrun(1, "helpers.prune.scores", *args)


def student_scores(profile: Profile, ws: Workspace, overwrite: bool = False) -> dict[str, float]:
    """Each pruned student's score by the search's function: {"<kind>-pruned": score}. Reused while the report is
    newer than every student and names them all, unless `overwrite`."""
    report, paths = ws.results / SCORES, {f"{kind}-pruned": ws.pruned(kind) for kind in ws.students}
    fresh = report.is_file() and all((path / "config.json").stat().st_mtime < report.stat().st_mtime for path in paths.values())
    if overwrite or not fresh or set(json.loads(report.read_text())["scores"]) != {str(p) for p in paths.values()}:
        run(score_command(profile, ws), ws.logs / "02-search-scores.log")
    scores = json.loads(report.read_text())["scores"]
    return {label: scores[str(path)] for label, path in paths.items()}


def search_report(profile: Profile, ws: Workspace, overwrite: bool = False) -> tuple:
    """The search's record, and its table: the scored candidates with every pruned student placed among them."""
    record, scores = search.load(ws.pruned(SEARCHED)), student_scores(profile, ws, overwrite)
    placed = {label: (architecture(ws.pruned(label.split("-")[0])), parameter_counts(ws.pruned(label.split("-")[0]))["total"], score) for label, score in scores.items()}
    return record, search.table(record, placed)
