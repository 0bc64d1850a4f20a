"""NeMo 2.5.3: CPU trainers where it hard-codes GPUs, checkpoint loading, and HF conversions without Transformer Engine."""

from __future__ import annotations

import functools
import importlib

import torch


def checkpoint_load_without_cuda() -> None:
    """nemo/lightning/io/pl.py:484 `_fix_tensors_device` asserts `torch.cuda.is_initialized()` on load."""
    pl = importlib.import_module("nemo.lightning.io.pl")
    pl._fix_tensors_device = lambda ckpt: ckpt


class _CpuLightning:
    """Stands in for `nemo.lightning` (`nl`) where upstream hard-codes a GPU bf16 trainer.

    Trainers run on the CPU accelerator and every precision becomes fp32: bf16 on the CPU is slow,
    and bf16 checkpoints written by the local spec keep fp32 norms, which trips the dtype check
    of nemo/lightning/io/state.py on export.
    """

    def __getattr__(self, name):
        return getattr(importlib.import_module("nemo.lightning"), name)

    def Trainer(self, *args, **kwargs):  # noqa: N802 - mirrors nl.Trainer
        kwargs["accelerator"] = "cpu"
        return self.__getattr__("Trainer")(*args, **kwargs)

    def MegatronMixedPrecision(self, *args, **kwargs):  # noqa: N802 - mirrors nl.MegatronMixedPrecision
        kwargs.update(precision="32", params_dtype=torch.float32)
        return self.__getattr__("MegatronMixedPrecision")(*args, **kwargs)

    def MegatronStrategy(self, *args, **kwargs):  # noqa: N802 - mirrors nl.MegatronStrategy
        kwargs["pipeline_dtype"] = torch.float32
        return self.__getattr__("MegatronStrategy")(*args, **kwargs)


def modelopt_restore_on_cpu() -> None:
    """`llm.prune` / `llm.distill` restore models through a GPU-only, TE-only path.

    nemo/collections/llm/modelopt/model_utils.py:170 builds `nl.Trainer(accelerator="gpu")`
    ("MisconfigurationException: No supported gpu backend found!") with bf16 (:151, :172);
    :73 sets `get_gpt_modelopt_spec`, imported at :37-39 only with Transformer Engine
    ("NameError"); Megatron's local spec, already chosen without TE, serves instead.
    """
    model_utils = importlib.import_module("nemo.collections.llm.modelopt.model_utils")
    model_utils.nl = _CpuLightning()
    model_utils._set_gpt_mamba_modelopt_spec = lambda model_cfg: model_cfg


_TE_FUSED_NORMS = {
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
}


def _local_norm_name(key: str) -> str:
    for fused, local in _TE_FUSED_NORMS.items():
        key = key.replace(fused, local)
    return key


def conversion_keeps_norm_weights() -> None:
    """HF<->NeMo connectors name the TE-fused norms; without TE the model has the local spec's names.

    nemo/collections/llm/gpt/model/qwen3.py:211-224 (import) and :296-301 (export) map the RMSNorm
    weights to `self_attention.linear_qkv.layer_norm_weight` / `mlp.linear_fc1.layer_norm_weight`.
    Megatron's local layer spec (chosen when Transformer Engine is missing) calls them
    `input_layernorm` / `pre_mlp_layernorm`, so nemo/lightning/io/state.py:64 `apply_transforms`
    silently skips them: import leaves every norm at 1.0, export fails at io/state.py:341.
    """
    state = importlib.import_module("nemo.lightning.io.state")
    io = importlib.import_module("nemo.lightning.io")
    original = state.apply_transforms

    def apply_transforms(source, target, mapping, *args, **kwargs):
        mapping = {_local_norm_name(k): _local_norm_name(v) for k, v in mapping.items()}
        return original(source, target, mapping, *args, **kwargs)

    state.apply_transforms = io.apply_transforms = apply_transforms


# NeMo's LlamaConfig (nemo/collections/llm/gpt/model/llama.py:76-82) turns on fusions that Qwen3Config
# leaves at Megatron's default (off), and that need Transformer Engine or a compiler:
LLAMA_FUSIONS_OFF = {
    "apply_rope_fusion": False,  # transformer_config.py:1162-1165: "ValueError: apply_rope_fusion is not available. Please install TE >= 1.4."
    "persist_layer_norm": False,  # torch_norm.py:30: "AssertionError: persist_layer_norm not supported by torch LayerNorm"
    "bias_activation_fusion": False,  # fusions/fused_bias_swiglu.py: @jit_fuser = torch.compile (megatron/core/jit.py:12), minutes of Inductor on CPU
    "bias_dropout_fusion": False,  # fusions/fused_bias_dropout.py:67-79: the same
}


def config_fields(model_type: str) -> dict:
    """Fields a NeMo model config needs on this machine: none with CUDA; for Llama without it, the fusions off."""
    return LLAMA_FUSIONS_OFF if model_type == "llama" and not torch.cuda.is_available() else {}


def llama_import_without_fusions() -> None:
    """`llm.import_ckpt` builds the Llama config itself, with the fusions on, and saves it in the checkpoint.

    nemo/collections/llm/gpt/model/llama.py:720, :744-767 (`HFLlamaImporter.config`) calls `LlamaConfig(...)`
    whatever model the caller passed, so the import stops at the ValueError above. While that property
    runs, `LlamaConfig` is called with the fusions off: the checkpoint's context then holds a plain
    LlamaConfig that prune, distill and export rebuild on CPU (it does not depend on this module).
    """
    llama = importlib.import_module("nemo.collections.llm.gpt.model.llama")
    original = llama.HFLlamaImporter.config.fget

    def config(self):
        real = llama.LlamaConfig
        llama.LlamaConfig = functools.partial(real, **LLAMA_FUSIONS_OFF)
        try:
            return original(self)
        finally:
            llama.LlamaConfig = real

    llama.HFLlamaImporter.config = property(config)
