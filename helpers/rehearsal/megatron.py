"""Megatron-Core 0.14.0: its RNG tracker, optimizer, resuming and timers on the CPU with gloo."""

from __future__ import annotations

import contextlib
import importlib

import torch

from helpers.rehearsal.pytorch import with_cuda_type_names


def rng_tracker_on_cpu() -> None:
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


def optimizer_accepts_cpu_params() -> None:
    """Megatron's optimizer checks that parameters and gradients are CUDA tensors by type name.

    megatron/core/optimizer/distrib_optimizer.py:341, :400, :559 ("TypeError: Wrapped parameters
    must be one of torch.cuda.FloatTensor, ...") and optimizer/clip_grads.py:167 (`assert
    param.grad.type() == 'torch.cuda.FloatTensor'`, called from optimizer.py:1277): CPU tensors
    are named as their CUDA twins while these run.
    """
    from megatron.core.optimizer import optimizer
    from megatron.core.optimizer.distrib_optimizer import DistributedOptimizer

    DistributedOptimizer.__init__ = with_cuda_type_names(DistributedOptimizer.__init__)
    optimizer.clip_grad_by_total_norm_fp32 = with_cuda_type_names(optimizer.clip_grad_by_total_norm_fp32)


def resume_without_transformer_engine() -> None:
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


def no_empty_timer_gather() -> None:
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
