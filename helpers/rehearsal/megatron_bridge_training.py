"""Megatron-Bridge 0.3.1 training (and Megatron-Core 0.16.1 under it) on a machine without CUDA, with gloo.

Every workaround here is keyed on CUDA being absent (`enable` applies none on a GPU); each names the upstream
file:line it works around, at those versions, and the symptom it avoids.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import torch

from helpers.rehearsal import megatron, pytorch

# Modules that call `torch.cuda.*` or build tensors on device "cuda" on the way through Bridge's training loop;
# inside each, `torch` is redirected to the CPU (pytorch._CPU_TORCH). Lines: the calls that raised "Torch not
# compiled with CUDA enabled" or "Found no NVIDIA driver".
CUDA_CALL_SITES = {
    "megatron.bridge.training.initialize": "",
    "megatron.bridge.training.setup": "",
    "megatron.bridge.training.train": "",
    "megatron.bridge.training.eval": "",
    "megatron.bridge.training.checkpointing": "",
    "megatron.bridge.training.utils.train_utils": "",
    "megatron.bridge.training.utils.batch_utils": "",
    "megatron.bridge.data.loaders": "",
    "megatron.bridge.models.model_provider": "",
    "megatron.core.tensor_parallel.random": "",
    "megatron.core.tensor_parallel.layers": "",
    "megatron.core.tensor_parallel.data": "",
    "megatron.core.tensor_parallel.mappings": "",
    "megatron.core.tensor_parallel.utils": "",
    "megatron.core.models.common.embeddings.rotary_pos_embedding": "",
    "megatron.core.transformer.utils": "",
    "megatron.core.transformer.module": "",
    "megatron.core.transformer.attention": "",
    "megatron.core.transformer.transformer_layer": "",
    "megatron.core.utils": "",
    "megatron.core.timers": "",
    "megatron.core.rerun_state_machine": "",
    "megatron.core.pipeline_parallel.schedules": "",
    "megatron.core.pipeline_parallel.p2p_communication": "",
    "megatron.core.pipeline_parallel.utils": "",
    "megatron.core.optimizer.optimizer": "",
    "megatron.core.optimizer.distrib_optimizer": "",
    "megatron.core.optimizer.clip_grads": "",
    "megatron.core.optimizer.grad_scaler": "",
    "megatron.core.distributed.distributed_data_parallel": "",
    "megatron.core.distributed.param_and_grad_buffer": "",
    "megatron.core.dist_checkpointing.strategies.torch": "",
    "megatron.core.dist_checkpointing.strategies.filesystem_async": "",
    "megatron.core.dist_checkpointing.strategies.state_dict_saver": "",
    "megatron.core.dist_checkpointing.strategies.fully_parallel": "",
    "megatron.core.dist_checkpointing.strategies.async_utils": "",
    "megatron.core.dist_checkpointing.exchange_utils": "",
}


class _Stream(pytorch._CpuCuda.Stream):
    def wait_stream(self, _stream) -> None:
        return None


class _CpuCuda(pytorch._CpuCuda):
    """`torch.cuda` as the CPU sees it, with what Bridge's start-up also calls."""

    Stream = _Stream

    @staticmethod
    def set_device(_device) -> None:
        return None

    @staticmethod
    def current_stream(_device=None) -> _Stream:
        return _Stream()


class _CpuTorch(pytorch._CpuTorch):
    cuda = _CpuCuda()
    rand = staticmethod(pytorch._CpuTorch._factory("rand"))


_CPU_TORCH = _CpuTorch()


def cuda_calls_on_cpu() -> None:
    """Redirect `torch` in every module of CUDA_CALL_SITES (file:lines listed there)."""
    for module_name in CUDA_CALL_SITES:
        importlib.import_module(module_name).torch = _CPU_TORCH


def initialize_without_cuda() -> None:
    """Bridge's start-up asserts CUDA ("Megatron requires CUDA.", megatron/bridge/training/initialize.py:83) unless
    `allow_no_cuda`, which its only caller (training/setup.py:136) never passes."""
    setup = importlib.import_module("megatron.bridge.training.setup")
    setup.initialize_megatron = functools.partial(setup.initialize_megatron, allow_no_cuda=True)


def prebuilt_dataset_helpers() -> None:
    """Bridge compiles Megatron's dataset index helpers at every start (training/initialize.py:139 ->
    megatron/core/datasets/utils.py:20-31, `make -C` the package folder). The PyPI wheel ships them compiled
    (helpers_cpp.*.so) without the Makefile, so `make` fails; where the compiled module is there, use it."""
    from megatron.core import datasets

    folder = Path(datasets.__file__).parent
    if (folder / "Makefile").exists() or not list(folder.glob("helpers_cpp*.so")):
        return
    importlib.import_module("megatron.bridge.training.initialize").compile_helpers = lambda: None


def models_built_on_cpu() -> None:
    """Bridge moves every model it builds to the current CUDA device ("Invalid device, must be cuda device",
    megatron/bridge/models/model_provider.py:577-583) unless `get_model` is told `use_cpu_initialization`, which
    it writes over the provider's own setting (:540); the teacher is built without it (models/
    distillation_provider.py:84). Every model is built in CPU memory instead."""
    provider = importlib.import_module("megatron.bridge.models.model_provider")
    get_model = provider.get_model

    @functools.wraps(get_model)
    def get_model_on_cpu(*args, **kwargs):
        return get_model(*args, **{**kwargs, "use_cpu_initialization": True})

    provider.get_model = get_model_on_cpu


WORKAROUNDS = (
    cuda_calls_on_cpu,
    initialize_without_cuda,
    prebuilt_dataset_helpers,
    models_built_on_cpu,
    megatron.rng_tracker_on_cpu,
    megatron.optimizer_accepts_cpu_params,
    pytorch.tensor_cuda_is_identity,
    megatron.resume_without_transformer_engine,
)


def enable() -> bool:
    """Apply every workaround once when CUDA is absent. Returns True if the CPU rehearsal is active."""
    if torch.cuda.is_available():
        return False
    for workaround in WORKAROUNDS:
        workaround()
    return True
