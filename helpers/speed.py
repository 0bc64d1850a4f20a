"""Speed of several models measured so that they can be compared: one process, interleaved rounds, ratios.

Timing each model right after loading it, one after another, lets load effects and whatever else the
machine does land on one model. Here every round visits every model once (after a warm-up pass on
that visit), the models take turns, and each model's time is divided by the reference's *in the
same round*: the median of those ratios survives a noisy machine far better than raw milliseconds.

Two sides of speed: prefill (one forward pass over a batch of full sequences, latency and tokens per
second) and decode (greedy generation of new tokens one at a time, tokens per second), where depth
pruning's fewer sequential layers show most.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch


@dataclass(frozen=True)
class SpeedSettings:
    batch_size: int
    seq_length: int
    decode_tokens: int
    rounds: int
    device: str
    dtype: str
    threads: int

    def __str__(self) -> str:
        return (
            f"{self.device}, {self.dtype}, {self.threads} thread(s); prefill: batch {self.batch_size} x {self.seq_length} tokens; "
            f"decode: {self.decode_tokens} new tokens, batch 1; median of {self.rounds} interleaved rounds after warm-up"
        )


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _seconds(work: Callable[[], object], device: str) -> float:
    _synchronize(device)
    start = time.perf_counter()
    work()
    _synchronize(device)
    return time.perf_counter() - start


def interleaved(workloads: dict[str, Callable[[], Callable[[], object]]], rounds: int, device: str) -> dict[str, list[float]]:
    """Seconds of each workload in each round. `workloads[name]()` prepares a visit (e.g. moves the model to the
    device) and returns the call to time; every visit runs it once untimed (warm-up), then once timed."""
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(rounds):
        for name, visit in workloads.items():
            call = visit()
            call()  # warm-up: caches, allocator, lazy initialisation
            times[name].append(_seconds(call, device))
    return times


def summary(times: dict[str, list[float]], reference: str, work_per_call: float, unit: str) -> pd.DataFrame:
    """Median and spread of each workload, its throughput, and its median per-round ratio to `reference`."""
    rows = {}
    for name, seconds in times.items():
        ratios = [s / r for s, r in zip(seconds, times[reference])]
        rows[name] = {
            f"{unit} ms": round(statistics.median(seconds) * 1e3, 2),
            f"{unit} spread ms": round((max(seconds) - min(seconds)) * 1e3, 2),
            f"{unit} tokens/s": round(work_per_call / statistics.median(seconds), 1),
            f"{unit} time / {reference}": round(statistics.median(ratios), 3),
        }
    return pd.DataFrame(rows).T


def measure(models: dict[str, torch.nn.Module], reference: str, settings: SpeedSettings) -> pd.DataFrame:
    """Prefill and decode speed of every model, interleaved; between visits the models wait on the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _measure(models, reference, settings)
    finally:
        torch.set_num_threads(threads)


def _measure(models: dict[str, torch.nn.Module], reference: str, settings: SpeedSettings) -> pd.DataFrame:
    vocab = min(model.config.vocab_size for model in models.values())
    generator = torch.Generator().manual_seed(0)
    batch = torch.randint(0, vocab, (settings.batch_size, settings.seq_length), generator=generator)
    prompt = batch[:1, :16]

    def visit(model, work):
        def prepare():  # one model on the accelerator at a time: five 8B-class models do not fit one GPU together
            for other in models.values():
                if other is not model:
                    other.to("cpu")
            model.to(settings.device)
            return lambda: work(model)

        return prepare

    def prefill(model):
        with torch.no_grad():
            model(batch.to(settings.device))

    def decode(model):
        with torch.no_grad():
            model.generate(prompt.to(settings.device), max_new_tokens=settings.decode_tokens, min_new_tokens=settings.decode_tokens,
                           do_sample=False, pad_token_id=0)  # fmt: skip

    tables = []
    for work, unit, tokens in ((prefill, "prefill", batch.numel()), (decode, "decode", settings.decode_tokens)):
        times = interleaved({name: visit(model, work) for name, model in models.items()}, settings.rounds, settings.device)
        tables.append(summary(times, reference, tokens, unit))
    for model in models.values():
        model.to("cpu")
    return pd.concat(tables, axis=1)
