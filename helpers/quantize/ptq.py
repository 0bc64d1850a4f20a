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
from helpers.models.hf_model import loaded
from helpers.quantize.recipe import FP8_MAX, QFORMAT, default_kv_cache_qformat, describe, quant_config
from helpers.quantize.reload import load_fp8, load_ignoring_scales, quantization_config
from helpers.run.outputs import produce

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


def match_export(model: torch.nn.Module) -> dict[str, int]:
    """Give the fake-quantized model the numbers its export will store: each range the scale the export writes (times
    448, as `load_fp8` reads it back) and each weight its stored FP8 value times that scale. Returns how many weights
    are quantized and how many of them the export rounds to the other FP8 neighbour than fake quantization does.

    The two round differently. The export computes scales as float32 `amax / 448` (modelopt/torch/export/
    unified_export_hf.py:452-458 for weights, quant_utils.py:235 and 1096 for inputs and the KV cache) and divides
    the weights by them (quant_utils.py:932); fake quantization multiplies by `448 / amax` (modelopt/torch/
    quantization/tensor_quant.py:52; on GPUs src/tensor_quant_gpu_fp8.cu:42,77). A range 1 ulp off, or a weight within
    float32 rounding of the midpoint between two FP8 values, lands apart; FP8 inputs turn such differences into
    whole FP8 steps a few layers on: on SmolLM2-135M, 0.02% of the weights land apart and the next-token distributions
    of the two differ by a mean KL of 3.3e-2, two thirds of what FP8 itself changes (4.7e-2).
    Matched, the fake-quantized model computes what the export holds, and the export is the same as without this."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    moved = total = 0
    with torch.no_grad():
        for quantizer in model.modules():
            if isinstance(quantizer, TensorQuantizer) and quantizer.is_enabled and quantizer.amax is not None:
                quantizer.amax = _scale(quantizer) * FP8_MAX
        for module in model.modules():
            quantizer = getattr(module, "weight_quantizer", None)
            if isinstance(quantizer, TensorQuantizer) and quantizer.is_enabled:
                scale = _scale(quantizer)
                exported = (module.weight.float() / scale).to(torch.float8_e4m3fn)
                simulated = (quantizer(module.weight).float() / scale).to(torch.float8_e4m3fn)  # its FP8 values
                moved += int((exported.float() != simulated.float()).sum())
                total += exported.numel()
                module.weight.copy_(exported.float() * scale)
    return {"FP8 weights": total, "rounded otherwise by the export": moved}


def _scale(quantizer) -> torch.Tensor:
    """The scale the export stores for a quantizer's range."""
    return quantizer.amax.float() / FP8_MAX


def quantize(hf_dir: Path, output: Path, calib_windows: np.ndarray, batch_size: int, *, kv_cache_qformat: str | None = None, overwrite: bool = False) -> dict:
    """Quantize the checkpoint at `hf_dir` to FP8, calibrated on `calib_windows` [count, length] of token ids, and
    export it to `output` with its tokenizer and a report of its checks (returned). A valid export already at
    `output` is reused unless `overwrite`; an interrupted or failed one leaves nothing behind.

    The checks, on the first calibration windows, judged as helpers/conversion/logits.py judges two copies of one
    model: the export reloaded with its scales (`load_fp8`) gives the fake-quantized model's logits (else the export is
    refused), loaded without them (`load_ignoring_scales`) it does not. Reported beside them: what FP8 changes in the
    source model's logits, and what the export's rounding changes (`match_export`)."""
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
        simulated = logits(model, ids)
        rounding = match_export(model)
        fp8 = logits(model, ids)  # the export turns the model's weights into FP8 in place: no forward after it
        checks = {"FP8 vs source": judge(fp8, source, dtype), "export's rounding vs fake quantization": judge(fp8, simulated, dtype)}
        began = time.monotonic()
        with torch.inference_mode():
            export_hf_checkpoint(model, export_dir=export)
        AutoTokenizer.from_pretrained(hf_dir).save_pretrained(export)  # as hf_ptq.py:702 does
        seconds["export"] = time.monotonic() - began
    began = time.monotonic()
    checks["reload vs FP8"] = _judge_loaded(load_fp8, export, ids, fp8, dtype)
    checks["plain load vs FP8"] = _judge_loaded(load_ignoring_scales, export, ids, fp8, dtype)
    seconds["checks"] = time.monotonic() - began
    for name, check in checks.items():
        print(f"Logits, {name}: {check.numbers()}", flush=True)
    moved, total = rounding["rounded otherwise by the export"], rounding["FP8 weights"]
    print(f"The export rounds {moved:,} of the {total:,} FP8 weights ({moved / total:.4%}) to the other neighbour than fake quantization.", flush=True)
    reloaded, plain = checks["reload vs FP8"].passed, checks["plain load vs FP8"].passed
    print(f"The reload {'gives' if reloaded else 'does NOT give'} the fake-quantized model's logits; a plain load {'gives them too' if plain else 'does not'}.", flush=True)
    if not reloaded:
        raise RuntimeError(f"the FP8 export of {hf_dir}, reloaded with its scales, does not give the fake-quantized model's logits: {checks['reload vs FP8']}")
    source_bytes, export_bytes = weights_bytes(hf_dir), weights_bytes(export)
    return {
        "source": str(hf_dir),
        "qformat": QFORMAT,
        "kv_cache_qformat": kv_cache_qformat,
        "recipe": describe(kv_cache_qformat),
        "modelopt": modelopt.__version__,
        "calibration": {"windows": len(windows), "length": int(windows.shape[1]), "batch_size": batch_size, "algorithm": "max"},
        "bytes": {"source": source_bytes, "export": export_bytes, "ratio": round(export_bytes / source_bytes, 4)},
        "rounding": rounding,
        "logits": {name: asdict(check) | {"passed": check.passed} for name, check in checks.items()},
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
    }


def _judge_loaded(load, export: Path, ids: torch.Tensor, fp8: torch.Tensor, dtype: torch.dtype) -> LogitsCheck:
    with loaded(export, load) as model:
        return judge(logits(model, ids), fp8, dtype)
