"""Run both routes' NeMo 2 / Megatron-Bridge / Megatron-Core / ModelOpt calls on a machine without CUDA.

Every workaround the CPU rehearsal needs lives in this folder, one module per library it patches
(`pytorch`, `megatron`, `nemo`, `modelopt`, `bridge`). Each one names the upstream file:line it works around
(NeMo 2.5.3, Megatron-Core 0.14.0, ModelOpt 0.35.1 on the NeMo 2 route; Megatron-Bridge 0.3.1, Megatron-Core
0.16.1, ModelOpt 0.43.0 on the Megatron-Bridge route) and the symptom it avoids. `enable()` (NeMo 2) applies
them only when CUDA is absent; on a GPU it returns without touching anything. `enable_bridge()` applies the
Bridge route's: those for a missing Transformer Engine when TE is missing, those for a missing CUDA when CUDA is.
"""

from __future__ import annotations

import torch

from helpers.errors import refuse
from helpers.rehearsal import bridge, megatron, megatron_bridge_training, modelopt, nemo, pytorch
from helpers.rehearsal.nemo import config_fields

__all__ = [
    "BRIDGE_TRAINING_WORKAROUNDS", "BRIDGE_WORKAROUNDS", "WORKAROUNDS", "accelerator", "async_checkpoint_saves", "child_environment", "config_fields", "enable", "enable_bridge", "have_transformer_engine",
    "start_process",
]  # fmt: skip

_applied = False

WORKAROUNDS = (
    pytorch.cuda_calls_on_cpu,
    megatron.rng_tracker_on_cpu,
    pytorch.tensor_cuda_is_identity,
    nemo.checkpoint_load_without_cuda,
    megatron.optimizer_accepts_cpu_params,
    megatron.no_empty_timer_gather,
    megatron.resume_without_transformer_engine,
    nemo.conversion_keeps_norm_weights,
    nemo.modelopt_restore_on_cpu,
    modelopt.minitron_knows_rmsnorm,
    nemo.llama_import_without_fusions,
)

# The Megatron-Bridge route's: those keyed each on its own cause (no Transformer Engine, or no CUDA), then those
# Bridge's training needs when CUDA is absent.
BRIDGE_WORKAROUNDS = bridge.WORKAROUNDS + modelopt.BRIDGE_WORKAROUNDS
BRIDGE_TRAINING_WORKAROUNDS = megatron_bridge_training.WORKAROUNDS
_applied_bridge = False


def accelerator() -> str:
    """The Lightning accelerator of the trainers this series builds: GPUs, or the CPU rehearsal."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def async_checkpoint_saves() -> bool:
    """Whether distillation writes its checkpoints in the background: NeMo's default on GPUs (`ckpt_async_save=True`,
    nemo/lightning/pytorch/strategies/megatron_strategy.py:279), where the writing overlaps the GPU's work.

    On the CPU there is nothing to overlap: the writer (a process forked per save, megatron/core/dist_checkpointing/
    strategies/async_utils.py:199) shares the cores with training, and a checkpoint is finalized only several steps
    later (10-20 s on `tiny`), so a run stopped in that time loses it. Written in line, it is complete before
    training goes on, at no measurable cost (a tiny distillation: 137.5 s in line, 136.9 s in the background).
    """
    return torch.cuda.is_available()


def have_transformer_engine() -> bool:
    """Whether NeMo builds Transformer Engine layers, decided by the import NeMo's own layer choice makes
    (`safe_import("transformer_engine")`, nemo/collections/llm/gpt/model/base.py:40): a TE that is installed but
    fails to import (a CUDA or driver mismatch) leaves NeMo on the local spec, where finding the package would not."""
    try:
        from nemo.utils.import_utils import safe_import
    except ImportError:  # the Megatron-Bridge route's environment: the same decision, Megatron-Core's plain import
        return bridge.have_transformer_engine()
    return safe_import("transformer_engine")[1]


def require_supported_machine() -> None:
    """Refuse a GPU without Transformer Engine: neither the container's path nor the CPU rehearsal.

    Without TE, nemo/collections/llm/gpt/model/base.py builds Megatron's local layer spec, whose norms
    the importers' TE names (qwen3.py:211-224, llama.py's equivalents) do not reach: the import leaves
    every norm weight at 1.0 without an error. The rehearsal's fix for that is keyed on CUDA being
    absent, so on a GPU the model would be silently wrong; refusing is the honest answer.
    """
    if torch.cuda.is_available() and not have_transformer_engine():
        raise refuse(
            "environment",
            "this machine has CUDA but not Transformer Engine: NeMo would fall back to Megatron's local layer spec, "
            "and its Hugging Face importers would leave every norm weight at 1.0 without an error",
            "use the NeMo container (nvcr.io/nvidia/nemo:25.09), or install Transformer Engine into this environment",
        )


def start_process() -> bool:
    """What every process of the series does before its work (a notebook's kernel in `notebook.start`, a NeMo
    process in `enable`): refuse an unsupported machine and, when CUDA is absent, keep freed tensor memory for
    reuse (`pytorch.freed_memory_stays_mapped`). Imports no NeMo. Returns True on the CPU rehearsal."""
    require_supported_machine()
    if torch.cuda.is_available():
        return False
    pytorch.freed_memory_stays_mapped()
    return True


def child_environment() -> dict[str, str]:
    """What every process launched from here gets in its environment: when CUDA is absent, the allocator settings
    of `start_process` from the first allocation on (`pytorch.allocator_environment`)."""
    return {} if torch.cuda.is_available() else pytorch.allocator_environment()


def enable() -> bool:
    """Apply every workaround once when CUDA is absent. Returns True if the CPU rehearsal is active."""
    global _applied
    if not start_process():
        return False
    if not _applied:
        for workaround in WORKAROUNDS:
            workaround()
        _applied = True
    return True


def enable_bridge() -> bool:
    """Apply the Megatron-Bridge route's workarounds once, each where its cause is. Returns True on the CPU rehearsal."""
    global _applied_bridge
    rehearsal = start_process()
    if not _applied_bridge:
        for workaround in BRIDGE_WORKAROUNDS + (BRIDGE_TRAINING_WORKAROUNDS if rehearsal else ()):
            workaround()
        _applied_bridge = True
    return rehearsal
