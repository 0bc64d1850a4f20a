"""torch: CUDA calls in upstream modules act on the CPU, CPU tensors pass CUDA type checks, freed memory is reused."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import platform

import torch


class _CpuCuda:
    """Stands in for `torch.cuda` inside the upstream modules patched below."""

    @staticmethod
    def current_device() -> torch.device:
        return torch.device("cpu")

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def synchronize(*_args, **_kwargs) -> None:
        return None

    @staticmethod
    def is_initialized() -> bool:
        return True

    get_rng_state = staticmethod(torch.get_rng_state)
    set_rng_state = staticmethod(torch.set_rng_state)
    manual_seed = staticmethod(torch.manual_seed)

    @staticmethod
    def stream(_stream=None):
        return contextlib.nullcontext()

    class Stream:  # noqa: D106 - a no-op stream object
        def __init__(self, *_args, **_kwargs):
            pass

    def __getattr__(self, name):
        return getattr(torch.cuda, name)


def _cpu_device(device):
    if device is None:
        return None
    if isinstance(device, int) or str(device).startswith("cuda"):
        return torch.device("cpu")
    return device


class _GlooDistributed:
    """Stands in for `torch.distributed`: gathers accept 0-d inputs as NCCL does (gloo refuses them)."""

    def __getattr__(self, name):
        return getattr(torch.distributed, name)

    @staticmethod
    def all_gather_into_tensor(output, tensor, *args, **kwargs):
        return torch.distributed.all_gather_into_tensor(output, tensor.reshape(-1), *args, **kwargs)


class _CpuTorch:
    """Stands in for `torch` inside a patched upstream module: CUDA devices become the CPU."""

    cuda = _CpuCuda()
    distributed = _GlooDistributed()

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def _factory(name):
        real = getattr(torch, name)

        def make(*args, device=None, **kwargs):
            return real(*args, device=_cpu_device(device), **kwargs)

        return make


for _name in ("tensor", "zeros", "ones", "empty", "full", "arange", "zeros_like", "empty_like", "ones_like"):
    setattr(_CpuTorch, _name, staticmethod(_CpuTorch._factory(_name)))

_CPU_TORCH = _CpuTorch()


def _redirect_torch(module_name: str) -> None:
    """Make `module_name` see a `torch` whose CUDA calls act on the CPU."""
    importlib.import_module(module_name).torch = _CPU_TORCH


# Upstream modules that call `torch.cuda.*` or build tensors on device "cuda" in the code paths
# the tutorial runs; inside each, `torch` is redirected to the CPU (lines: the calls that raised
# "AssertionError: Torch not compiled with CUDA enabled").
CUDA_CALL_SITES = {
    "megatron.core.dist_checkpointing.strategies.filesystem_async": "230 synchronize",
    "megatron.core.dist_checkpointing.strategies.async_utils": "148, 549 current_device; 195 synchronize",
    "megatron.core.dist_checkpointing.strategies.state_dict_saver": "204 device='cuda'; 252 current_device",
    "megatron.core.dist_checkpointing.strategies.fully_parallel": "272, 281 synchronize",
    "megatron.core.dist_checkpointing.exchange_utils": "107, 113, 329 device='cuda' (loading with DP > 1)",
    "nemo.lightning.megatron_parallel": "617 torch.cuda.stream(torch.cuda.Stream())",
    "megatron.core.models.common.embeddings.rotary_pos_embedding": "78, 164, 272 current_device",
    "megatron.core.tensor_parallel.random": "196-199 get_rng_state/manual_seed",
    "nemo.lightning.megatron_init": "238 device_count() > 0 guards the model-parallel RNG seeding",
    "megatron.core.utils": "534 current_device (GlobalMemoryBuffer); 1016 device='cuda'",
    "megatron.core.transformer.utils": "32 device='cuda' (default causal mask)",
    "megatron.core.tensor_parallel.layers": "255, 544, 589, 599, 865, 891, 1177, 1198 current_device",
    "megatron.core.transformer.attention": "259 current_device",
    "megatron.core.transformer.transformer_layer": "711, 715, 809 current_device",
    "megatron.core.pipeline_parallel.schedules": "578, 968, 2124 device='cuda' (token counter)",
    "megatron.core.pipeline_parallel.p2p_communication": "190-202, 313, 321 current_device; 242, 398 synchronize",
    "megatron.core.tensor_parallel.data": "37 device='cuda'; 86 current_device",
    "megatron.core.tensor_parallel.mappings": "91, 141, 148, 181, 442 current_device",
    "megatron.core.tensor_parallel.utils": "70, 91 current_device",
    "megatron.core.optimizer.optimizer": "430, 438, 442, 864 device='cuda'; 1098 current_device",
    "megatron.core.optimizer.clip_grads": "90, 103, 115, 174, 206 device='cuda'",
    "megatron.core.optimizer.grad_scaler": "15, 88, 91, 94 device='cuda'",
    "megatron.core.optimizer.distrib_optimizer": "768 current_device",
    "megatron.core.distributed.distributed_data_parallel": "313 torch.cuda.Stream",
    "megatron.core.distributed.param_and_grad_buffer": "371-464 CUDA streams; 688, 705, 711 current_device",
    "megatron.core.timers": "139, 152 synchronize; 276 current_device",
    "modelopt.torch.nas.plugins.megatron": "1373-1374 .cuda(); 1376-1379 all_gather_into_tensor of a 0-d "
    "tensor (gloo: 'invalid tensor size')",
    "megatron.core.rerun_state_machine": "310, 334, 351, 363 device='cuda'; 499, 538, 615 current_device",
}


def cuda_calls_on_cpu() -> None:
    """Redirect `torch` in every module of CUDA_CALL_SITES (file:lines listed there)."""
    for module_name in CUDA_CALL_SITES:
        _redirect_torch(module_name)


def tensor_cuda_is_identity() -> None:
    """`Tensor.cuda()` can only fail on a CPU build of torch; make it a no-op instead.

    nemo/collections/llm/gpt/model/base.py:101 (every batch), megatron/core/utils.py:749,
    megatron/core/models/common/language_module/language_module.py:233.
    """
    torch.Tensor.cuda = lambda self, *_args, **_kwargs: self


def freed_memory_stays_mapped() -> None:
    """Keep the memory of freed tensors in the process for the next ones, instead of returning it to the kernel.

    PyTorch's CPU allocator keeps no cache (c10/core/impl/alloc_cpu.cpp: `alloc_cpu` is posix_memalign,
    `free_cpu` is free). glibc serves each block above its mmap threshold (32 MiB at most, mallopt(3)) with
    a fresh mapping and unmaps it on free, so every step's full-vocabulary logits (~120 MB for the tiny
    teacher) are faulted in again 4 KiB at a time: in a tiny series a quarter of the CPU time (407 of
    1,713 s) went to the kernel's page-fault handler. With mmap off and trimming at its limit, freed
    blocks stay in the heap and are reused; a process keeps its peak memory until it exits. glibc only.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_max = -1, -4  # malloc.h
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)


def allocator_environment() -> dict[str, str]:
    """The environment that gives a process `freed_memory_stays_mapped` from its start, in every thread.

    The mallopt calls above come after the imports and reach the main arena only. glibc gives other threads
    arenas of their own, which map every large block afresh whatever M_MMAP_MAX says (sysmalloc's fallback to
    mmap outside the main arena, glibc 2.36 malloc/malloc.c). GLIBC_TUNABLES is read before the first
    allocation: one arena for all threads, no mmap, no trimming. A tiny distillation on 2 AVX2 cores: 149 s ->
    127 s, 71 -> 48 s of system time. What stays is fragmentation: a freed block a little smaller than the
    next aligned request (posix_memalign asks for the size plus the alignment) is passed over for new pages.
    """
    if platform.libc_ver()[0] != "glibc":
        return {}
    return {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"}


@contextlib.contextmanager
def tensors_report_cuda_types():
    """Inside the block, `tensor.type()` names a CPU tensor as its CUDA twin ("torch.cuda.FloatTensor")."""
    original = torch.Tensor.type

    def tensor_type(self, dtype=None, *args, **kwargs):
        if dtype is None and not args and not kwargs:
            return original(self).replace("torch.", "torch.cuda.", 1)
        return original(self, dtype, *args, **kwargs)

    torch.Tensor.type = tensor_type
    try:
        yield
    finally:
        torch.Tensor.type = original


def with_cuda_type_names(function):
    def wrapped(*args, **kwargs):
        with tensors_report_cuda_types():
            return function(*args, **kwargs)

    return wrapped
