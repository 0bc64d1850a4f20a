"""Run the NeMo 2 / Megatron-Core / ModelOpt calls of this tutorial on a machine without CUDA.

Every workaround the CPU rehearsal needs lives here. Each one names the upstream file:line it
works around (NeMo 2.5.3, Megatron-Core 0.14.0, ModelOpt 0.35.1) and the symptom it avoids.
`enable()` applies them only when CUDA is absent; on a GPU it returns without touching anything.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util

import torch

from helpers.errors import refuse

_applied = False


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


# --- the workarounds -------------------------------------------------------------------------

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


def _cuda_calls_on_cpu() -> None:
    """Redirect `torch` in every module of CUDA_CALL_SITES (file:lines listed there)."""
    for module_name in CUDA_CALL_SITES:
        _redirect_torch(module_name)


def _rng_tracker_on_cpu() -> None:
    """Megatron's model-parallel RNG tracker keeps CUDA generator states and switches between them.

    megatron/core/tensor_parallel/random.py:41 / :73 read and write the CUDA generator, and
    :205 `fork()` is entered on every attention forward (transformer/dot_product_attention.py:183)
    and weight initialisation. The CPU has one generator: states are read and written there, and
    forking does not switch streams (they only decorrelate dropout across tensor-parallel ranks;
    Qwen3 has no dropout and the CPU rehearsal runs with tensor parallel size 1).
    """
    random = importlib.import_module("megatron.core.tensor_parallel.random")
    random._get_cuda_rng_state = lambda *_args, **_kwargs: torch.get_rng_state()
    random._set_cuda_rng_state = lambda new_state, *_args, **_kwargs: torch.set_rng_state(new_state)
    random.CudaRNGStatesTracker.fork = contextlib.contextmanager(lambda self, name=None: (yield))


def _tensor_cuda_is_identity() -> None:
    """`Tensor.cuda()` can only fail on a CPU build of torch; make it a no-op instead.

    nemo/collections/llm/gpt/model/base.py:101 (every batch), megatron/core/utils.py:749,
    megatron/core/models/common/language_module/language_module.py:233.
    """
    torch.Tensor.cuda = lambda self, *_args, **_kwargs: self


@contextlib.contextmanager
def _tensors_report_cuda_types():
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


def _with_cuda_type_names(function):
    def wrapped(*args, **kwargs):
        with _tensors_report_cuda_types():
            return function(*args, **kwargs)

    return wrapped


def _optimizer_accepts_cpu_params() -> None:
    """Megatron's optimizer checks that parameters and gradients are CUDA tensors by type name.

    megatron/core/optimizer/distrib_optimizer.py:341, :400, :559 ("TypeError: Wrapped parameters
    must be one of torch.cuda.FloatTensor, ...") and optimizer/clip_grads.py:167 (`assert
    param.grad.type() == 'torch.cuda.FloatTensor'`, called from optimizer.py:1277): CPU tensors
    are named as their CUDA twins while these run.
    """
    from megatron.core.optimizer import optimizer
    from megatron.core.optimizer.distrib_optimizer import DistributedOptimizer

    DistributedOptimizer.__init__ = _with_cuda_type_names(DistributedOptimizer.__init__)
    optimizer.clip_grad_by_total_norm_fp32 = _with_cuda_type_names(optimizer.clip_grad_by_total_norm_fp32)


def _resume_without_transformer_engine() -> None:
    """Resuming a run fails without Apex or Transformer Engine: the optimizer state cannot be restored.

    megatron/core/optimizer/distrib_optimizer.py:618-619 takes Adam's step count from the
    optimizer state (`assert len(steps) == 1`), which is empty until the first step, yet loading a
    checkpoint asks for that state dict first (:1154, via NeMo's megatron_strategy.py:1117): while
    the state is empty, one parameter holds step 0 (the checkpoint's value replaces it). Then
    :907 copies every state entry from the checkpoint, including "step", which :1543 leaves out
    ("KeyError: 'step'"): the step set from the checkpoint's param groups is kept instead.
    """
    from megatron.core.optimizer.distrib_optimizer import DistributedOptimizer

    state_dict, set_states = DistributedOptimizer.state_dict, DistributedOptimizer._set_main_param_and_optimizer_states

    def state_dict_before_first_step(self):
        if self.optimizer.state:
            return state_dict(self)
        first = self.optimizer.param_groups[0]["params"][0]
        self.optimizer.state[first] = {"step": torch.tensor(0.0)}
        try:
            return state_dict(self)
        finally:
            del self.optimizer.state[first]

    def set_states_keeping_step(self, model_param, tensors):
        group, order = self.model_param_group_index_map[model_param]
        state = self.optimizer.state[self.optimizer.param_groups[group]["params"][order]]
        if "step" in state and "step" not in tensors:
            tensors = {**tensors, "step": state["step"]}
        return set_states(self, model_param, tensors)

    DistributedOptimizer.state_dict = state_dict_before_first_step
    DistributedOptimizer._set_main_param_and_optimizer_states = set_states_keeping_step


def _no_empty_timer_gather() -> None:
    """Rank 0 alone reports Megatron's timers, which all-gathers them even when none is registered.

    nemo/lightning/pytorch/callbacks/progress_printer.py:154 calls megatron/core/timers.py:381 on
    the printing rank only, and timers.py:287 all-gathers a tensor with zero timers. NCCL skips an
    empty collective; gloo waits for the other ranks, so data parallelism hangs after one step.
    """
    from megatron.core.timers import Timers

    original = Timers.get_all_timers_string

    def get_all_timers_string(self, names=None, *args, **kwargs):
        if not (names or self._timers):
            return None
        return original(self, names, *args, **kwargs)

    Timers.get_all_timers_string = get_all_timers_string


def _checkpoint_load_without_cuda() -> None:
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


def _modelopt_restore_on_cpu() -> None:
    """`llm.prune` / `llm.distill` restore models through a GPU-only, TE-only path.

    nemo/collections/llm/modelopt/model_utils.py:170 builds `nl.Trainer(accelerator="gpu")`
    ("MisconfigurationException: No supported gpu backend found!") with bf16 (:151, :172);
    :73 sets `get_gpt_modelopt_spec`, imported at :37-39 only with Transformer Engine
    ("NameError"); Megatron's local spec, already chosen without TE, serves instead.
    """
    model_utils = importlib.import_module("nemo.collections.llm.modelopt.model_utils")
    model_utils.nl = _CpuLightning()
    model_utils._set_gpt_mamba_modelopt_spec = lambda model_cfg: model_cfg


def _minitron_knows_rmsnorm() -> None:
    """Megatron's local spec normalises with `torch.nn.RMSNorm`, which ModelOpt cannot make dynamic.

    modelopt/torch/nas/plugins/megatron.py:670 converts each layer's norms through the registry,
    which knows LayerNorm, FusedLayerNorm and TE norms only: "KeyError: <class
    'torch.nn.modules.normalization.RMSNorm'> is not registered for a dynamic module!".
    Registered here as ModelOpt's dynamic LayerNorm without a bias.
    """
    from modelopt.torch.nas.modules import _DynamicLayerNorm
    from modelopt.torch.nas.registry import DMRegistry
    from modelopt.torch.nas.traced_hp import TracedHp

    if torch.nn.RMSNorm in DMRegistry:
        return

    class _DynamicRMSNorm(_DynamicLayerNorm):
        def _setup(self):
            shape = list(self.normalized_shape)
            self._register_hparam("num_features", TracedHp(list(range(1, shape[-1] + 1))))
            self._register_dynamic_attribute("weight", self._cut_to_active_features)
            self._register_dynamic_attribute("normalized_shape", self._get_normalized_shape)

    DMRegistry.register({torch.nn.RMSNorm: "torch.nn.RMSNorm"})(_DynamicRMSNorm)


_TE_FUSED_NORMS = {
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
}


def _local_norm_name(key: str) -> str:
    for fused, local in _TE_FUSED_NORMS.items():
        key = key.replace(fused, local)
    return key


def _conversion_keeps_norm_weights() -> None:
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


def _llama_import_without_fusions() -> None:
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


WORKAROUNDS = (
    _cuda_calls_on_cpu,
    _rng_tracker_on_cpu,
    _tensor_cuda_is_identity,
    _checkpoint_load_without_cuda,
    _optimizer_accepts_cpu_params,
    _no_empty_timer_gather,
    _resume_without_transformer_engine,
    _conversion_keeps_norm_weights,
    _modelopt_restore_on_cpu,
    _minitron_knows_rmsnorm,
    _llama_import_without_fusions,
)


def accelerator() -> str:
    """The Lightning accelerator of the trainers this series builds: GPUs, or the CPU rehearsal."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def have_transformer_engine() -> bool:
    return importlib.util.find_spec("transformer_engine") is not None


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


def enable() -> bool:
    """Apply every workaround once when CUDA is absent. Returns True if the CPU rehearsal is active."""
    global _applied
    require_supported_machine()
    if torch.cuda.is_available():
        return False
    if not _applied:
        for workaround in WORKAROUNDS:
            workaround()
        _applied = True
    return True
