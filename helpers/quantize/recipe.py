"""The FP8 recipe of ModelOpt's examples/llm_ptq/hf_ptq.py (`--qformat fp8`) for a dense transformer, and whether this
machine's ModelOpt can run it.

What hf_ptq.py 0.43.0 does (the file at that tag, NVIDIA/Model-Optimizer):
- :96 `"fp8": mtq.FP8_DEFAULT_CFG`: per-tensor FP8 (E4M3) weights and inputs of every linear layer, scales by max
  calibration. Its `_default_disabled_quantizer_cfg` (modelopt/torch/quantization/config.py:147-163) leaves out
  `*lm_head*`, MoE routers and gates (`*router*`, `*mlp.gate.*`, ...), Mamba's conv1d and everything not named
  (`default`): embeddings, norms, the attention's softmax and the output layer stay in the checkpoint's dtype.
- :1110-1119 `--kv_cache_qformat` defaults to `fp8_cast`: keys and values are quantized to FP8 as the attention
  reads them (`FP8_KV_CFG`, :114-123, merged at :960-969), with the constant amax 448, a scale of 1.0 and no
  calibration (:80-89, :982-984). 0.35.1's hf_ptq.py has no cast formats; its default is `fp8` (:693-697), whose
  KV scales are calibrated.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch

from helpers.models.hf_model import device

QFORMAT = "fp8"
KV_CACHE_QFORMATS = ("fp8_cast", "fp8", "none")
FP8_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448: amax / FP8_MAX is a tensor's scale


def fp8_supported() -> str | None:
    """None where ModelOpt can fake-quantize FP8 on this machine's device (`hf_model.device`), else the reason.

    ModelOpt 0.43.0 falls back to eager PyTorch for tensors off the GPU (modelopt/torch/quantization/
    tensor_quant.py:79-80); 0.35.1 always asks for its CUDA extension (tensor_quant.py:59,
    `get_cuda_ext_fp8(raise_if_failed=True)`), which a machine without CUDA cannot build.
    """
    try:
        import modelopt
        from modelopt.torch.quantization.tensor_quant import scaled_e4m3
    except ImportError as error:
        return f"ModelOpt cannot be imported: {error}"
    x = torch.tensor([0.3, -1.7, 2.0], device=device())
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the extension loader's notes
            warnings.simplefilter("ignore")
            scaled_e4m3(x, x.abs().amax(), None, 4, 3)
    except RuntimeError as error:
        return f"ModelOpt {modelopt.__version__} cannot fake-quantize FP8 on the {device()}: {str(error).strip()}"
    return None


def constant_kv_amax_supported() -> bool:
    """ModelOpt knows `use_constant_amax` (0.43.0 does, 0.35.1 does not): the `fp8_cast` KV cache format."""
    from modelopt.torch.quantization.config import QuantizerAttributeConfig

    return "use_constant_amax" in QuantizerAttributeConfig.model_fields


def default_kv_cache_qformat() -> str:
    """hf_ptq.py's default `--kv_cache_qformat` for the installed ModelOpt: `fp8_cast` since it exists, else `fp8`."""
    return "fp8_cast" if constant_kv_amax_supported() else "fp8"


def quant_config(kv_cache_qformat: str) -> dict:
    """`mtq.FP8_DEFAULT_CFG` with the KV cache's quantizers merged in as hf_ptq.py does it
    (`update_quant_cfg_with_kv_cache_quant`, modelopt/torch/quantization/utils/core_utils.py:825-838)."""
    import modelopt.torch.quantization as mtq

    config = copy.deepcopy(mtq.FP8_DEFAULT_CFG)
    if kv_cache_qformat != "none":
        config["quant_cfg"].update(copy.deepcopy(mtq.FP8_KV_CFG["quant_cfg"]))
    if kv_cache_qformat == "fp8_cast":
        config["quant_cfg"]["*[kv]_bmm_quantizer"]["use_constant_amax"] = True
    return config


def describe(kv_cache_qformat: str) -> str:
    """The recipe in words, for reports."""
    kv = {
        "fp8_cast": "KV cache FP8 with scale 1.0 (mtq.FP8_KV_CFG, constant amax)",
        "fp8": "KV cache FP8 with calibrated scales (mtq.FP8_KV_CFG)",
        "none": "KV cache not quantized",
    }[kv_cache_qformat]
    return f"mtq.FP8_DEFAULT_CFG (per-tensor FP8 weights and inputs of the linear layers, lm_head excluded), {kv}"

