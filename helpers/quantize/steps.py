"""The FP8 step: quantize the teacher and every distilled student, then measure each FP8 checkpoint beside
the model it came from, on the comparison's own test tokens, and add both to `results/comparison.json`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from helpers.data.indexed import token_windows
from helpers.errors import raise_if_any
from helpers.evaluate import comparison, perplexity, throughput
from helpers.evaluate.perplexity import NOISE
from helpers.models import hf_model
from helpers.profiles import Profile
from helpers.quantize import ptq
from helpers.quantize.recipe import QFORMAT, default_kv_cache_qformat, describe, fp8_supported
from helpers.run.launch import python_module
from helpers.workspace import Workspace

FP8 = "-fp8"  # a quantized model's label: its source's, with this suffix (per-window scores, figures)
MB = 1e6


def command(profile: Profile, ws: Workspace, label: str) -> list[str]:
    """`python -m helpers.quantize` for one model, with the profile's calibration: what `quantize_all` runs in the
    notebook's process, for a terminal or another machine."""
    settings = profile.quantize
    return python_module(
        "helpers.quantize", "--pyt_ckpt_path", ws.hf_model(label), "--qformat", QFORMAT, "--export_path", ws.fp8(label),
        "--data_paths", ws.data_prefix("train"), "--calib_size", settings.calib_size, "--calib_seq", settings.calib_seq,
        "--batch_size", settings.batch_size,
    )  # fmt: skip


def is_current(export: Path, source: Path, profile: Profile) -> bool:
    """A complete export of `source` as it is now (written after its weights), calibrated as the profile says."""
    if not ptq.is_fp8_export(export):
        return False
    calibration = ptq.report(export)["calibration"]
    settings = profile.quantize
    newest_source = max(f.stat().st_mtime for f in source.iterdir() if f.name.endswith(ptq.WEIGHT_SUFFIXES))
    return (calibration["windows"], calibration["length"], calibration["batch_size"]) == (settings.calib_size, settings.calib_seq, settings.batch_size) and (
        (export / ptq.REPORT).stat().st_mtime >= newest_source
    )


def quantize_all(profile: Profile, ws: Workspace, overwrite: bool = False) -> pd.DataFrame | None:
    """Quantize every model of `ws.deployed` to FP8 (a current export is reused unless `overwrite`) and return what each
    export's report says. On a stack that cannot fake-quantize FP8 here, say why, print the commands, return None."""
    if reason := fp8_supported():
        print(f"FP8 skipped: {reason}.\nThe commands, for a GPU machine or the Megatron-Bridge route's environment:")
        for label in ws.deployed:
            print("  " + shlex.join(command(profile, ws, label)))
        return None
    settings = profile.quantize
    windows = token_windows(ws.data_prefix("train"), settings.calib_seq, settings.calib_size)
    print(f"Recipe: {describe(default_kv_cache_qformat())}.")
    reports = {}
    for label, source in ws.deployed.items():
        print(f"\n{label} (in a terminal: {shlex.join(command(profile, ws, label))})", flush=True)
        stale = overwrite or (ws.fp8(label).exists() and not is_current(ws.fp8(label), source, profile))
        reports[label] = ptq.quantize(source, ws.fp8(label), windows, settings.batch_size, overwrite=stale)
    return summary(reports)


def summary(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per export: its size against its source's, the reload checks, and the time each phase took."""
    rows = {}
    for label, report in reports.items():
        logits = report["logits"]
        rows[label] = {
            "weights MB": report["bytes"]["source"] / MB,
            "FP8 weights MB": report["bytes"]["export"] / MB,
            "FP8 / source": report["bytes"]["ratio"],
            "reload = fake-quantized": logits["reload vs FP8"]["passed"],
            "reload max |Δlogit|": logits["reload vs FP8"]["max_abs_diff"],
            "plain load = fake-quantized": logits["plain load vs FP8"]["passed"],
            "plain load mean KL": logits["plain load vs FP8"]["mean_kl"],
            **{f"{phase} s": seconds for phase, seconds in report["seconds"].items()},
        }
    return pd.DataFrame(rows).T.round(4)


def measure(profile: Profile, ws: Workspace, table: pd.DataFrame) -> pd.DataFrame:
    """Add to the comparison: every model's weights on disk, and for each FP8 checkpoint its weights, test loss and
    perplexity and KL divergence from the (unquantized) teacher on the comparison's test windows, loaded with its
    scales (`reload.load_fp8`). Saved in comparison.json, with per-window scores under "<label>-fp8" and the recipe
    (or, where FP8 cannot run, why) under "fp8"."""
    from transformers import AutoTokenizer

    table = table.assign(**{"weights MB": {label: ptq.weights_bytes(ws.hf_model(label)) / MB for label in table.index}})
    if reason := fp8_supported():
        return comparison.update(table, ws, fp8={"skipped": reason})
    from helpers.quantize.reload import load_fp8

    if missing := [label for label in ws.deployed if not ptq.is_fp8_export(ws.fp8(label))]:
        raise FileNotFoundError(f"no complete FP8 checkpoint of {', '.join(missing)} in {ws.fp8('')}: run `quantize.quantize_all` (the cell above) first")
    settings, windows = profile.evaluation, comparison.test_windows(profile, ws)
    tokenizer = AutoTokenizer.from_pretrained(ws.hf_teacher)
    rows, per_window = {}, {}
    with hf_model.loaded(ws.hf_teacher) as teacher:
        for label in ws.deployed:
            # no generation: token by token, simulated FP8 on a CPU is slow, and perplexity and KL already show the cost
            scores = perplexity.evaluate(ws.fp8(label), windows, tokenizer, batch_size=settings.batch_size, prompt=settings.prompt,
                                         max_new_tokens=0, teacher=teacher, load=load_fp8)  # fmt: skip
            per_window[label + FP8] = scores["per window"]
            rows[label] = {
                "FP8 weights MB": ptq.weights_bytes(ws.fp8(label)) / MB,
                "FP8 test loss": scores["test loss"],
                "FP8 test perplexity": scores["test perplexity"],
                "FP8 KL to teacher": scores["KL to teacher"],
            }
            print(f"{label + FP8:20} test perplexity {scores['test perplexity']:>10} (unquantized {table.loc[label, 'test perplexity']})   KL to the teacher {scores['KL to teacher']:.4f}")
    recipe = {"recipe": describe(default_kv_cache_qformat()), "calibration": ptq.report(ws.fp8("teacher"))["calibration"]}
    return comparison.update(table.join(pd.DataFrame(rows).T), ws, per_window=per_window, fp8=recipe)


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """Each quantized model beside its source (as exported: bf16 on GPUs, the CPU steps' dtype on CPU): weights on disk,
    test perplexity, KL divergence from the teacher."""
    if "FP8 test perplexity" not in table:  # FP8 did not run here
        return table[["weights MB", "test perplexity", "KL to teacher"]].astype(float).round(2)
    shown = table.dropna(subset=["FP8 test perplexity"])
    columns = {
        "weights MB": "MB", "FP8 weights MB": "FP8 MB", "test perplexity": "perplexity",
        "FP8 test perplexity": "FP8 perplexity", "KL to teacher": "KL to teacher", "FP8 KL to teacher": "FP8 KL to teacher",
    }  # fmt: skip
    shown = shown[list(columns)].astype(float).rename(columns=columns)
    shown.insert(2, "FP8 / source size", shown["FP8 MB"] / shown["MB"])
    return shown.round({"MB": 1, "FP8 MB": 1, "FP8 / source size": 3, "KL to teacher": 4, "FP8 KL to teacher": 4})


def findings(table: pd.DataFrame, per_window: dict[str, dict[str, list[float]]]) -> str:
    """What FP8 did to each model, in this run's numbers: the test-loss cost with its standard error (paired over the
    same windows), perplexity, and the bytes kept; then the smallest checkpoint against the teacher."""
    if "FP8 test perplexity" not in table:
        return "FP8 was not measured here (see the quantization cell above for why)."
    lines = []
    quantized = table.dropna(subset=["FP8 test perplexity"])
    for label, row in quantized.iterrows():
        cost = perplexity.difference(per_window[label + FP8]["loss"], per_window[label]["loss"])
        lines.append(
            f"{label}: FP8 costs {cost.verdict()} of test loss (perplexity {row['test perplexity']:.2f} -> "
            f"{row['FP8 test perplexity']:.2f}) and keeps {row['FP8 weights MB'] / row['weights MB']:.0%} of the weights' "
            f"bytes ({row['weights MB']:.1f} -> {row['FP8 weights MB']:.1f} MB)."
        )
    smallest = quantized["FP8 weights MB"].astype(float).idxmin()
    teacher = table.loc["teacher"]
    gap = perplexity.difference(per_window[smallest + FP8]["loss"], per_window["teacher"]["loss"])
    lines.append(
        f"The smallest checkpoint, {smallest} in FP8, holds {quantized.loc[smallest, 'FP8 weights MB'] / teacher['weights MB']:.0%} "
        f"of the teacher's bytes at perplexity {quantized.loc[smallest, 'FP8 test perplexity']:.2f} against the teacher's "
        f"{teacher['test perplexity']:.2f} (test loss {gap}, {'beyond' if gap.exceeds(NOISE) else 'within'} the noise)."
    )
    return "\n".join(lines)


def deployable(ws: Workspace) -> dict[str, Path]:
    """Every checkpoint one would deploy, bf16 and FP8 ("<label>-fp8"), by label."""
    return ws.deployed | {label + FP8: ws.fp8(label) for label in ws.deployed}


def benchmark(profile: Profile, ws: Workspace, table: pd.DataFrame) -> pd.DataFrame | None:
    """`vllm bench throughput` on every deployable checkpoint, where vLLM and a GPU are here: model loading memory,
    output tokens per second and the speedup over the bf16 teacher, saved with the comparison `table` in
    comparison.json under "vllm". Elsewhere, say why and print the commands; return None."""
    checkpoints = deployable(ws)
    context = json.loads((ws.hf_teacher / "config.json").read_text())["max_position_embeddings"]
    raise_if_any(throughput.problems(profile.quantize, context))
    if reason := throughput.unavailable_reason():
        print(f"vLLM throughput skipped: {reason}. The commands, one per checkpoint:")
        for path in checkpoints.values():
            print("  " + shlex.join(throughput.command(path, profile.quantize)))
        return None
    figures = throughput.benchmark(checkpoints, profile.quantize, ws.logs)
    for label, speedup in throughput.speedups(figures).items():
        figures[label]["speedup vs bf16 teacher"] = speedup
    comparison.update(table, ws, vllm=figures)
    return pd.DataFrame(figures).T
