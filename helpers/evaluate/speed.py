"""Speed of several models measured so that they can be compared: one process, interleaved rounds, ratios.

Timing each model right after loading it, one after another, lets load effects and whatever else the
machine does land on one model. Here every round visits every model once (after a warm-up pass:
on the first visit, and on every visit where the visit moves the model onto a GPU), the models take
turns, and each model's time is divided by the reference's *in the same round*: the median of those ratios survives a noisy machine far better than raw milliseconds.

Two sides of speed: prefill (one forward pass over a batch of full sequences, latency and tokens per
second) and decode (greedy generation of new tokens one at a time, tokens per second), where depth
pruning's fewer sequential layers show most.

To check a reported table, measure again in a fresh process and compare the ratios:

    python -m helpers.evaluate.speed --profile smollm2-135m --workdir ./workspace
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
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


def interleaved(workloads: dict[str, Callable[[], Callable[[], object]]], rounds: int, device: str, warm_every_visit: bool) -> dict[str, list[float]]:
    """Seconds of each workload in each round. `workloads[name]()` prepares a visit (e.g. moves the model to the
    device) and returns the call to time. The call runs once untimed first (warm-up: lazy initialisation, the
    allocator, caches) on a workload's first visit, and on every visit if `warm_every_visit` (when a visit moves
    the model onto an accelerator, say), then once timed."""
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for round_ in range(rounds):
        for name, visit in workloads.items():
            call = visit()
            if round_ == 0 or warm_every_visit:
                call()
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
        # On CPU the models stay where they are between visits, so one warm-up each suffices.
        times = interleaved({name: visit(model, work) for name, model in models.items()}, settings.rounds, settings.device, warm_every_visit=settings.device != "cpu")
        tables.append(summary(times, reference, tokens, unit))
    for model in models.values():
        model.to("cpu")
    return pd.concat(tables, axis=1)


RATIOS = ("prefill time / teacher", "decode time / teacher")


def agreement(reported: pd.DataFrame, again: pd.DataFrame, tolerance: float = 0.10) -> pd.DataFrame:
    """Each model's ratios to the teacher as reported and as measured again, and whether they agree within `tolerance`."""
    rows = {}
    for column in RATIOS:
        side = column.split()[0]
        for model in reported.index:
            first, second = float(reported.loc[model, column]), float(again.loc[model, column])
            rows[(side, model)] = {"reported": first, "measured again": second, "difference": round(abs(second - first) / first, 3)}
    table = pd.DataFrame(rows).T
    table["agrees"] = table["difference"] <= tolerance
    return table


def rank_disagreements(reported: pd.DataFrame, again: pd.DataFrame, tolerance: float = 0.10) -> list[str]:
    """Pairs of models the report ranks apart (ratios more than `tolerance` apart) that the re-measurement ranks the other way."""
    problems = []
    for column in RATIOS:
        for a in reported.index:
            for b in reported.index:
                first, second = reported.loc[a, column], reported.loc[b, column]
                if first > second * (1 + tolerance) and not again.loc[a, column] > again.loc[b, column]:
                    problems.append(f"{column}: reported {a} {first} > {b} {second}, measured again {again.loc[a, column]} <= {again.loc[b, column]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Measure the compared models' speed again, in this fresh process, and check it against notebook 04's table."""
    import argparse

    from helpers.evaluate import comparison
    from helpers.profiles import DEFAULT_PROFILE, get_profile
    from helpers.workspace import DEFAULT_WORKDIR, WORKDIR_ENV, open_workspace

    p = argparse.ArgumentParser(prog="python -m helpers.evaluate.speed", description=main.__doc__)
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.add_argument("--workdir", default=os.environ.get(WORKDIR_ENV, DEFAULT_WORKDIR))
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: the profile's)")
    p.add_argument("--tolerance", type=float, default=0.10, help="largest relative difference of a ratio that counts as agreeing")
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    os.environ[WORKDIR_ENV] = args.workdir  # the flag wins over an inherited $TUTORIAL_WORKDIR
    ws = open_workspace(profile.name, profile.model.name, args.workdir)
    settings = comparison.speed_settings(profile, ws)
    if args.rounds:
        settings = dataclasses.replace(settings, rounds=args.rounds)
    reported = pd.DataFrame(comparison.load(ws)["models"]).set_index("model")
    print(f"Reported: {comparison.load(ws)['speed']}\nMeasuring again: {settings}", flush=True)
    again = comparison.measure_speed(ws, settings)
    table = agreement(reported, again, args.tolerance)
    problems = rank_disagreements(reported, again, args.tolerance)
    print(table.to_string(), *(problems or ["every pair the report ranks more than the tolerance apart is ranked the same"]), sep="\n")
    return 0 if table["agrees"].all() and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
