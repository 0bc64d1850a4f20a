"""Import each route's stack (NeMo 2, or Megatron-Bridge; Megatron-Core and ModelOpt below both) the way every step needs it."""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from functools import cache

from helpers.run.cell_output import STACK_IMPORTED
from helpers.run.launch import is_rank0


@cache
def nemo_llm():
    """`nemo.collections.llm`, imported once per process.

    ModelOpt is imported first (NeMo 2.5 and ModelOpt 0.35 import each other circularly
    otherwise); the CPU rehearsal is switched on when there is no CUDA device; and Megatron's
    optional multi-storage client is switched off: every path here is a local file, and its
    file hooks print tracebacks when the interpreter exits.
    """
    started = time.perf_counter()
    with garbage_collection_paused():
        import modelopt.torch.prune  # noqa: F401  (must precede nemo.collections.llm)
        from nemo.collections import llm

    from helpers import rehearsal

    rehearsal.enable()
    megatron_local_files()
    if is_rank0():
        print(STACK_IMPORTED.format(stack="NeMo", seconds=time.perf_counter() - started), flush=True)
    return llm


@cache
def megatron_bridge():
    """`megatron.bridge`, imported once per process, with the CPU rehearsal's workarounds where they apply
    (`rehearsal.enable_bridge`: without Transformer Engine, Bridge's import needs one first)."""
    started = time.perf_counter()
    from helpers import rehearsal

    with garbage_collection_paused():
        rehearsal.enable_bridge()
        import megatron.bridge

    megatron_local_files()
    if is_rank0():
        print(STACK_IMPORTED.format(stack="Megatron-Bridge", seconds=time.perf_counter() - started), flush=True)
    return megatron.bridge


def pause_garbage_collection() -> None:
    """Turn Python's cyclic garbage collector off until `nemo_llm` has imported the stack.

    The NeMo entry points call it before their first import, so that what some of them import before
    NeMo (torch, Lightning, Megatron-Core) is covered too.
    """
    gc.disable()


@contextmanager
def garbage_collection_paused():
    """Importing the stack creates millions of objects and little garbage: Python's cyclic collector, run
    every few hundred allocations, would scan them again and again (a third of the import's time on a
    2-core CPU: 26 s -> 17 s). Afterwards they are frozen (`gc.freeze`), so that later collections skip
    them too, and the collector is on, whether or not `pause_garbage_collection` turned it off earlier."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def megatron_local_files() -> None:
    """Read and write Megatron datasets and checkpoints as plain local files."""
    from megatron.core.msc_utils import MultiStorageClientFeature

    MultiStorageClientFeature.disable()
