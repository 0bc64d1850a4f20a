"""Quantize a Hugging Face checkpoint to FP8 with ModelOpt, export it as a unified Hugging Face checkpoint, and check
the export: what examples/llm_ptq/hf_ptq.py --qformat fp8 does (helpers/quantize/recipe.py), calibrated on the
series' own tokenized training windows instead of a downloaded dataset."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from helpers.conversion.logits import MIN_TOKENS, LogitsCheck, judge
from helpers.hf_model import free_device_memory, loaded
from helpers.outputs import produce
from helpers.quantize.recipe import QFORMAT, default_kv_cache_qformat, describe, quant_config
from helpers.quantize.reload import load_fp8, load_ignoring_scales, quantization_config

REPORT = "quantization_report.json"  # written into the export: the export and its checks appear together
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weights_bytes(folder: Path) -> int:
    """Bytes of the checkpoint's weight files: its size on disk, without tokenizer and config files."""
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES))


def is_fp8_export(path: Path) -> bool:
    """A complete export: FP8 weights, the quantization config, and the report of its checks."""
    try:
        quantization = quantization_config(path) or {}
    except (OSError, ValueError):
        return False
    return quantization.get("quant_algo") == "FP8" and weights_bytes(path) > 0 and (path / REPORT).is_file()


def report(path: Path) -> dict:
    """The report `quantize` wrote into the export at `path`."""
    return json.loads((path / REPORT).read_text())


def calibration_loop(windows: np.ndarray, batch_size: int):
    """ModelOpt's `forward_loop`: every window through the model, a progress line at each tenth."""
    starts = range(0, len(windows), batch_size)
    every = max(1, len(starts) // 10)

    def forward_loop(model: torch.nn.Module) -> None:
        began = time.monotonic()
        with torch.no_grad():
            for batch, start in enumerate(starts, 1):
                model(torch.from_numpy(windows[start : start + batch_size]).to(model.device))
                if batch % every == 0 or batch == len(starts):
                    done = min(start + batch_size, len(windows))
                    print(f"  calibrating: {done}/{len(windows)} windows, {time.monotonic() - began:.0f} s", flush=True)

    return forward_loop


def logits(model: torch.nn.Module, token_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(token_ids.to(model.device)).logits.float().cpu()


def check_ids(windows: np.ndarray) -> torch.Tensor:
    """The windows the logits checks run on: the first ones, at least MIN_TOKENS positions if there are that many."""
    return torch.from_numpy(windows[: math.ceil(MIN_TOKENS / windows.shape[1])])


# When the reload counts as the fake-quantized model: its next-token distributions differ from the fake-quantized
# model's by at most this share of the KL divergence FP8 itself adds to the source model's, and it keeps every decisive
# top-1 token (helpers/conversion/logits.py). The reload is exactly the stored checkpoint (weights = FP8 x weight_scale,
# ranges = scale x 448); the checkpoint differs from the fake-quantized model only where the export rounded a weight
# lying exactly half-way between two FP8 values: it divides by the scale where fake quantization multiplies by its
# inverse, and the tie goes the other way. Measured: 5e-6 of FP8's KL on the tiny teacher, 2% on tests/bridge's random
# Qwen3 (one such weight among 0.5 million moves its flat logits); a load that drops the scales: 200-4000x FP8's KL.
RELOAD_KL_SHARE = 0.1


def reproduces(reload: LogitsCheck, fp8_cost: LogitsCheck) -> bool:
    """`reload` (candidate: the reloaded export, reference: the fake-quantized model) is within RELOAD_KL_SHARE of
    `fp8_cost` (candidate: the fake-quantized model, reference: the source model) and keeps the decisive tokens."""
    return reload.decisive_flips == 0 and reload.mean_kl <= RELOAD_KL_SHARE * fp8_cost.mean_kl


def quantize(hf_dir: Path, output: Path, calib_windows: np.ndarray, batch_size: int, *, kv_cache_qformat: str | None = None, overwrite: bool = False) -> dict:
    """Quantize the checkpoint at `hf_dir` to FP8, calibrated on `calib_windows` [count, length] of token ids, and
    export it to `output` with its tokenizer and a report of its checks (returned). A valid export already at
    `output` is reused unless `overwrite`; an interrupted or failed one leaves nothing behind.

    The checks, on the first calibration windows: what FP8 changes in the source model's logits; that the export,
    reloaded with its scales (`load_fp8`), `reproduces` the fake-quantized model (else the export is refused); and
    that loaded without them (`load_ignoring_scales`) it does not."""
    kv_cache_qformat = kv_cache_qformat or default_kv_cache_qformat()

    def build(partial: Path) -> None:
        summary = _quantize_and_export(hf_dir, partial, calib_windows, batch_size, kv_cache_qformat)
        (partial / REPORT).write_text(json.dumps(summary, indent=2))

    produce(output, build, is_valid=is_fp8_export, overwrite=overwrite, what="FP8 checkpoint")
    return report(output)


def _quantize_and_export(hf_dir: Path, export: Path, windows: np.ndarray, batch_size: int, kv_cache_qformat: str) -> dict:
    import modelopt
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoTokenizer

    seconds, ids = {}, check_ids(windows)
    with loaded(hf_dir) as model:
        dtype, source = model.dtype, logits(model, ids)
        print(f"Calibrating {hf_dir.name} for FP8 on {len(windows)} windows of {windows.shape[1]} tokens ...", flush=True)
        began = time.monotonic()
        mtq.quantize(model, quant_config(kv_cache_qformat), forward_loop=calibration_loop(windows, batch_size))
        seconds["calibration"] = time.monotonic() - began
        fp8 = logits(model, ids)  # the export turns the model's weights into FP8 in place: no forward after it
        began = time.monotonic()
        with torch.inference_mode():
            export_hf_checkpoint(model, export_dir=export)
        AutoTokenizer.from_pretrained(hf_dir).save_pretrained(export)  # as hf_ptq.py:702 does
        seconds["export"] = time.monotonic() - began
    began = time.monotonic()
    checks = {
        "FP8 vs source": judge(fp8, source, dtype),
        "reload vs FP8": _judge_loaded(load_fp8, export, ids, fp8, dtype),
        "plain load vs FP8": _judge_loaded(load_ignoring_scales, export, ids, fp8, dtype),
    }
    seconds["checks"] = time.monotonic() - began
    verdicts = {name: reproduces(checks[name], checks["FP8 vs source"]) for name in ("reload vs FP8", "plain load vs FP8")}
    for name, verdict in verdicts.items():
        print(f"Logits, {name}: {'reproduces' if verdict else 'does not reproduce'} the fake-quantized model: {_numbers(checks[name])}", flush=True)
    print(f"Logits, FP8 vs source (what FP8 changes): {_numbers(checks['FP8 vs source'])}", flush=True)
    if not verdicts["reload vs FP8"]:
        raise RuntimeError(f"the FP8 export of {hf_dir}, reloaded with its scales, does not reproduce the fake-quantized model: {_numbers(checks['reload vs FP8'])}")
    source_bytes, export_bytes = weights_bytes(hf_dir), weights_bytes(export)
    return {
        "source": str(hf_dir),
        "qformat": QFORMAT,
        "kv_cache_qformat": kv_cache_qformat,
        "recipe": describe(kv_cache_qformat),
        "modelopt": modelopt.__version__,
        "calibration": {"windows": len(windows), "length": int(windows.shape[1]), "batch_size": batch_size, "algorithm": "max"},
        "bytes": {"source": source_bytes, "export": export_bytes, "ratio": round(export_bytes / source_bytes, 4)},
        "logits": {name: asdict(check) | ({"reproduces": verdicts[name]} if name in verdicts else {}) for name, check in checks.items()},
        "reload KL share": RELOAD_KL_SHARE,
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
    }


def _judge_loaded(load, export: Path, ids: torch.Tensor, fp8: torch.Tensor, dtype: torch.dtype) -> LogitsCheck:
    check = judge(logits(load(export), ids), fp8, dtype)
    free_device_memory()  # the loaded model is gone with the expression
    return check


def _numbers(check: LogitsCheck) -> str:
    return (
        f"mean KL {check.mean_kl:.2e}, max |difference| {check.max_abs_diff:.2e}, same top-1 token at "
        f"{check.decisive_positions - check.decisive_flips} of {check.decisive_positions} decisive positions and at "
        f"{check.top1_agreement:.1%} of all {check.tokens}"
    )
