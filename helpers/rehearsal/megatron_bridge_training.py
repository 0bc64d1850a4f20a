"""Megatron-Bridge 0.3.1 training (and Megatron-Core 0.16.1 under it) on a machine without CUDA, with gloo.

What `helpers.distill.bridge` (Bridge's `distill`: start-up, both models, distributed optimizer, training, validation,
`torch_dist` checkpoints, resuming) and `helpers.distill.bridge_export` (AutoBridge's `export_ckpt`, a checkpoint
built as a model) need beyond `rehearsal.bridge`. Every workaround is keyed on CUDA being absent (`rehearsal.enable_bridge`
applies none on a GPU) and names the upstream file:line it works around, at those versions, and the symptom it avoids.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from helpers.rehearsal import megatron, pytorch

# Modules that call `torch.cuda.*` or make tensors on device "cuda" on the way through Bridge's distillation and
# export; inside each, `torch` acts on the CPU (lines: the calls that raise "Torch not compiled with CUDA enabled").
CUDA_CALL_SITES = {
    "megatron.bridge.training.initialize": "539, 678 device_count; 556 set_device; 704-753 torch.rand(device='cuda') (JIT warm-up)",
    "megatron.bridge.training.setup": "164 device='cuda'",
    "megatron.bridge.training.checkpointing": "407 get_rng_state; 1796 set_rng_state",
    "megatron.bridge.training.utils.train_utils": "308, 330 current_device; 404, 720 device='cuda'",
    "megatron.bridge.data.loaders": "270 device='cuda'",
    "megatron.bridge.models.model_provider": "708-710, 724 Stream, current_stream, stream (around wrapping in DDP)",
    "megatron.core.tensor_parallel.random": "235-238 get_rng_state, manual_seed; 422 manual_seed",
    "megatron.core.models.common.embeddings.rotary_pos_embedding": "162 current_device",
    "megatron.core.transformer.utils": "35 device='cuda' (default causal mask)",
    "megatron.core.utils": "631 current_device (GlobalMemoryBuffer); 1207 device='cuda'",
    "megatron.core.timers": "152, 165 synchronize; 303 current_device",
    "megatron.core.pipeline_parallel.schedules": "596 device='cuda' (token counter)",
    "megatron.core.optimizer.optimizer": "481, 485 device='cuda'",
    "megatron.core.optimizer.clip_grads": "103 device='cuda'",
    "megatron.core.optimizer.distrib_optimizer": "791 current_device",
    "megatron.core.distributed.param_and_grad_buffer": "800, 806 current_device",
    "megatron.core.dist_checkpointing.strategies.filesystem_async": "230 synchronize",
    "megatron.core.dist_checkpointing.strategies.state_dict_saver": "252 current_device",
}


class _Stream(pytorch._CpuCuda.Stream):
    def wait_stream(self, _stream) -> None:
        return None


class _CpuCuda(pytorch._CpuCuda):
    """`torch.cuda` on the CPU (`pytorch._CpuCuda`), with the calls Bridge's start-up adds."""

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
    given `allow_no_cuda`, which its caller (training/setup.py:136) never passes."""
    setup = importlib.import_module("megatron.bridge.training.setup")
    setup.initialize_megatron = functools.partial(setup.initialize_megatron, allow_no_cuda=True)


def prebuilt_dataset_helpers() -> None:
    """Bridge compiles Megatron's dataset index helpers at every start (training/initialize.py:139 ->
    megatron/core/datasets/utils.py:20-31, `make -C` the package folder), and the PyPI wheel of Megatron-Core ships
    them compiled (helpers_cpp.*.so) without the Makefile: `make` fails. Where the compiled module is there and the
    Makefile is not, the start uses it; inert wherever the Makefile is (the container's Megatron-Core)."""
    from megatron.core import datasets

    folder = Path(datasets.__file__).parent
    if (folder / "Makefile").exists() or not list(folder.glob("helpers_cpp*.so")):
        return
    importlib.import_module("megatron.bridge.training.initialize").compile_helpers = lambda: None


def models_built_on_cpu() -> None:
    """Bridge moves every model it builds to the current CUDA device ("Invalid device, must be cuda device",
    megatron/bridge/models/model_provider.py:577-583) unless `get_model` is told `use_cpu_initialization`, which
    it writes over the provider's own setting (:540); Bridge's setup and the distillation's teacher
    (models/distillation_provider.py:84) leave it False. Every model is built in CPU memory instead."""
    provider = importlib.import_module("megatron.bridge.models.model_provider")
    get_model = provider.get_model

    @functools.wraps(get_model)
    def get_model_on_cpu(*args, **kwargs):
        return get_model(*args, **{**kwargs, "use_cpu_initialization": True})

    provider.get_model = get_model_on_cpu


# Reused from the NeMo 2 route where Megatron-Core 0.16.1 kept the code (its lines moved):
# - megatron.rng_tracker_on_cpu: CUDA generator states, tensor_parallel/random.py:41, :72, fork :243.
# - megatron.optimizer_accepts_cpu_params: "Wrapped parameters must be one of torch.cuda.FloatTensor, ...",
#   optimizer/distrib_optimizer.py:431; clip_grads.py:167.
# - pytorch.tensor_cuda_is_identity: every batch's `.cuda()`, megatron/bridge/training/gpt_step.py:131.
# - megatron.resume_without_transformer_engine: resuming asks torch Adam's empty state for its step
#   (`assert len(steps) == 1`, distrib_optimizer.py:641-642, from checkpointing.py:1553).
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
