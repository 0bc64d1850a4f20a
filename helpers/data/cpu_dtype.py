"""Which dtype CPU training computes in: bf16 only where this processor runs it natively *and* faster.

bf16 halves memory traffic, but only processors with bf16 instructions (AVX512-BF16, AMX) compute
it natively; elsewhere (AVX2 only, e.g. many AMD EPYC and laptop CPUs) PyTorch emulates it and a
matrix product runs ~24x slower than in fp32. A flag name is not proof, so the choice also times
one matrix product of the shape that dominates training in both dtypes.

`TUTORIAL_CPU_DTYPE=fp32` or `=bf16` overrides the choice (the tests use it to rehearse the other kind of CPU;
forcing bf16 where it is emulated works, only ~24x slower).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from helpers.errors import refuse

BF16_MIN_SPEEDUP = 1.25  # below this, fp32's exactness is worth more than bf16's speed
PROBE_SHAPE = (1024, 256, 8192)  # tokens x hidden x output rows: the shape of the tiny teacher's output layer
OVERRIDE = "TUTORIAL_CPU_DTYPE"
FORCED = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class CpuReport:
    capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", ...
    native_bf16: bool  # AVX512-BF16 or AMX instructions
    fp32_ms: float | None = None  # the probe matrix product, if it was timed
    bf16_ms: float | None = None

    def __str__(self) -> str:
        timed = f", matmul {self.fp32_ms:.0f} ms fp32 vs {self.bf16_ms:.0f} ms bf16" if self.fp32_ms else ""
        return f"CPU {self.capability}, native bf16 {'yes' if self.native_bf16 else 'no'}{timed}"


def choose(report: CpuReport) -> torch.dtype:
    """bf16 where the CPU has bf16 instructions and the timed product ran at least BF16_MIN_SPEEDUP faster."""
    if not report.native_bf16 or report.fp32_ms is None or report.bf16_ms is None:
        return torch.float32
    return torch.bfloat16 if report.fp32_ms >= BF16_MIN_SPEEDUP * report.bf16_ms else torch.float32


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The processor has bf16 instructions (Linux CPU flags; elsewhere assumed absent, which only costs speed)."""
    try:
        flags = next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def _matmul_ms(dtype: torch.dtype, repeats: int = 3) -> float:
    tokens, hidden, rows = PROBE_SHAPE
    a, b = torch.randn(tokens, hidden), torch.randn(hidden, rows)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            a @ b
        best = min(best, time.perf_counter() - start)
    return best * 1e3


@cache
def report() -> CpuReport:
    """This CPU: its capability, and (only where bf16 is native) the probe timed in both dtypes."""
    capability, native = torch.backends.cpu.get_cpu_capability(), native_bf16()
    if not native:
        return CpuReport(capability, native)  # emulated bf16 is never chosen: no need to time its slowness
    return CpuReport(capability, native, _matmul_ms(torch.float32), _matmul_ms(torch.bfloat16))


def forced() -> torch.dtype | None:
    """The dtype `TUTORIAL_CPU_DTYPE` forces, or None when it is unset or "auto"."""
    value = os.environ.get(OVERRIDE, "auto").strip().lower()
    if value == "auto":
        return None
    if value not in FORCED:
        raise refuse(OVERRIDE, f"{value!r} is not a CPU training dtype", f"set it to one of {', '.join(FORCED)} or auto (or unset it)")
    return FORCED[value]


def training_dtype() -> torch.dtype:
    """The dtype CPU training autocasts its matrix products to on this machine (`TUTORIAL_CPU_DTYPE` overrides it)."""
    return forced() or choose(report())
