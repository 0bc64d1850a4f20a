"""Import the NeMo / Megatron-Core / ModelOpt stack the way every step of the series needs it."""

from __future__ import annotations

import time
from functools import cache

from helpers.launch import is_rank0

# Printed once NeMo is imported (by rank 0): `timings` reads it to tell a command's start-up from its work.
IMPORTED = "[helpers] NeMo stack imported in {seconds:.1f} s"


@cache
def nemo_llm():
    """`nemo.collections.llm`, imported once per process.

    ModelOpt is imported first (NeMo 2.5 and ModelOpt 0.35 import each other circularly
    otherwise); the CPU rehearsal is switched on when there is no CUDA device; and Megatron's
    optional multi-storage client is switched off: every path here is a local file, and its
    file hooks print tracebacks when the interpreter exits.
    """
    started = time.perf_counter()
    import modelopt.torch.prune  # noqa: F401  (must precede nemo.collections.llm)
    from nemo.collections import llm

    from helpers import rehearsal

    rehearsal.enable()
    megatron_local_files()
    if is_rank0():
        print(IMPORTED.format(seconds=time.perf_counter() - started), flush=True)
    return llm


def megatron_local_files() -> None:
    """Read and write Megatron datasets and checkpoints as plain local files."""
    from megatron.core.msc_utils import MultiStorageClientFeature

    MultiStorageClientFeature.disable()
