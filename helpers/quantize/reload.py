"""Load an FP8 checkpoint exported by ModelOpt into PyTorch with its scales, as the fake-quantized model it came from.

The export (modelopt/torch/export/unified_export_hf.py, `export_hf_checkpoint`) stores each quantized linear layer's
weight in float8_e4m3fn with a per-tensor `weight_scale` and the `input_scale` of its input, a calibrated KV cache's
`k_proj.k_scale`/`v_proj.v_scale`, and `quantization_config: {"quant_method": "modelopt", ...}` in config.json. It is
made for deployment frameworks (vLLM, TensorRT-LLM, SGLang): ModelOpt has no loader for it back into PyTorch (its
maintainers: "the quantized checkpoint is not supported to be loaded by HF AutoQuantizer", NVIDIA/Model-Optimizer
issue 186), and transformers 4.57 does not know the quant method: it warns "Unknown quantization type, got modelopt",
drops the scales as unused weights and keeps the FP8 weights unscaled, so its forward fails on the mixed dtypes, and
casting them to the model's dtype gives a model whose weights are off by their scales (`load_ignoring_scales`).

`load_fp8` multiplies each weight by its scale, then lets ModelOpt insert the quantizers of the same recipe
(`mtq.quantize`) and sets their ranges from the stored scales (amax = scale x 448): the result computes what the
fake-quantized model computed before its export.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from helpers.models.hf_model import device
from helpers.quantize.recipe import FP8_MAX, quant_config

# Stored scale suffix -> the ModelOpt quantizer it calibrates, relative to the module that owns the scale.
_QUANTIZER_OF = {
    "weight_scale": "weight_quantizer",
    "input_scale": "input_quantizer",
    "k_scale": "../k_bmm_quantizer",  # stored on self_attn.k_proj, the quantizer lives on self_attn
    "v_scale": "../v_bmm_quantizer",
}


def quantization_config(path: Path) -> dict | None:
    """The `quantization_config` of the checkpoint's config.json, or None for an unquantized checkpoint."""
    return json.loads((path / "config.json").read_text()).get("quantization_config")


def load_ignoring_scales(path: Path) -> torch.nn.Module:
    """What a plain `AutoModelForCausalLM.from_pretrained` gives, with its FP8 weights cast to the model's dtype so that
    it runs (every quantized weight is off by its scale), in eval mode, on the GPU if there is one."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging

    config = AutoConfig.from_pretrained(path)
    del config.quantization_config  # transformers would only warn that it does not know it
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the scales, "not used when initializing": load_fp8 uses them
    try:
        model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype="auto")
    finally:
        logging.set_verbosity(verbosity)
    return model.to(model.get_input_embeddings().weight.dtype).to(device()).eval()


def stored_scales(path: Path) -> dict[str, torch.Tensor]:
    """Every `*_scale` tensor of the checkpoint's safetensors files, by name."""
    from safetensors import safe_open

    scales = {}
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(file, framework="pt") as tensors:
            names = tensors.keys()  # safe_open is not iterable
            scales |= {name: tensors.get_tensor(name) for name in names if name.endswith("_scale")}
    return scales


def load_fp8(path: Path) -> torch.nn.Module:
    """The FP8 checkpoint at `path` as ModelOpt's fake-quantized model with the stored scales, in eval mode, on the
    GPU if there is one."""
    import modelopt.torch.quantization as mtq

    quantization = quantization_config(path)
    if not quantization or quantization.get("quant_method") != "modelopt" or quantization.get("quant_algo") != "FP8":
        raise ValueError(f"{path} is not an FP8 checkpoint exported by ModelOpt: its quantization_config is {quantization}")
    model = load_ignoring_scales(path)
    scales = stored_scales(path)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, scale in scales.items():
            if name.endswith(".weight_scale"):
                weight = modules[name.removesuffix(".weight_scale")].weight
                weight.copy_(weight.float() * scale.to(weight.device))
    kv_cache = "fp8" if quantization.get("kv_cache_scheme") else "none"
    mtq.quantize(model, quant_config(kv_cache), forward_loop=None)  # calibrates the weights only
    _set_ranges(dict(model.named_modules()), scales, kv_cache_scale_default=1.0 if kv_cache != "none" else None)
    return model


def _set_ranges(modules: dict[str, torch.nn.Module], scales: dict[str, torch.Tensor], kv_cache_scale_default: float | None) -> None:
    """amax = scale x 448 for the quantizer each stored scale belongs to. A KV cache quantizer without a stored scale
    gets `kv_cache_scale_default` (1.0, as vLLM assumes and hf_ptq.py's `fp8_cast` exports). Refuses a checkpoint
    whose scales and quantizers do not match one to one."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    targets = {}
    for name, scale in scales.items():
        owner, suffix = name.rsplit(".", 1)
        relative = _QUANTIZER_OF[suffix]
        if relative.startswith("../"):
            owner, relative = owner.rsplit(".", 1)[0], relative.removeprefix("../")
        targets[f"{owner}.{relative}"] = scale
    enabled = {name for name, module in modules.items() if isinstance(module, TensorQuantizer) and module.is_enabled}
    for name in enabled - targets.keys():
        if name.endswith(("k_bmm_quantizer", "v_bmm_quantizer")) and kv_cache_scale_default is not None:
            targets[name] = torch.tensor(kv_cache_scale_default)
    if unmatched := sorted(enabled ^ targets.keys()):
        raise ValueError(f"the checkpoint's scales and the recipe's quantizers differ: {unmatched[:6]} ({len(unmatched)} in all)")
    for name, scale in targets.items():
        modules[name].amax = scale.float().to(device()) * FP8_MAX
