"""Speed of several models measured so that they can be compared: one process, interleaved rounds, ratios.

Timing each model right after loading it, one after another, lets load effects and whatever else the
machine does land on one model. Here every round visits every model once (after a warm-up pass:
on the first visit, and on every visit where the visit moves the model onto a GPU), the models take
turns, and each model's time is divided by the reference's *in the same round*: the median of those
ratios survives a noisy machine far better than raw milliseconds. A decode is timed token by token and
counts its median interval, so a token held up by the machine does not count.

Two sides of speed: prefill (one forward pass over a batch of full sequences that ends in the next token's
logits, as generation starts; latency and tokens per second) and decode (greedy generation of new tokens
one at a time, tokens per second), where depth pruning's fewer sequential layers show most.

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
            f"decode: {self.decode_tokens} new tokens, batch 1, median time per token; "
            f"median of {self.rounds} interleaved rounds after warm-up"
        )


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _seconds(work: Callable[[], object], device: str) -> float:
    """Seconds one call of `work` takes, the device's queue drained before and after."""
    _synchronize(device)
    start = time.perf_counter()
    work()
    _synchronize(device)
    return time.perf_counter() - start


class TokenClock:
    """A `generate(streamer=...)` that notes when each new token arrives (generate hands it over on the CPU, so
    the device has finished it): the median interval is the time per token of a decode, whatever disturbed a few."""

    def __init__(self):
        self.arrivals: list[float] = []

    def put(self, _tokens) -> None:
        self.arrivals.append(time.perf_counter())

    def end(self) -> None:
        pass

    def seconds_per_token(self) -> float:
        after_first = self.arrivals[1:]  # the first put is the prompt, the first interval the prompt's prefill
        return statistics.median(b - a for a, b in zip(after_first, after_first[1:]))


def interleaved(workloads: dict[str, Callable[[], Callable[[], float]]], rounds: int, warm_every_visit: bool) -> dict[str, list[float]]:
    """Seconds of each workload in each round. `workloads[name]()` prepares a visit (e.g. moves the model to the
    device) and returns the measurement: a call that does the work and returns the seconds it took. It runs
    once as a warm-up (lazy initialisation, the allocator, caches), its result dropped, on a workload's first
    visit, and on every visit if `warm_every_visit` (when a visit moves the model onto an accelerator, say)."""
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for round_ in range(rounds):
        for name, visit in workloads.items():
            measurement = visit()
            if round_ == 0 or warm_every_visit:
                measurement()
            times[name].append(measurement())
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

    def prefill(model) -> float:  # as generation's prefill: the whole prompt in, the next token's logits out
        with torch.no_grad():
            inputs = batch.to(settings.device)
            return _seconds(lambda: model(inputs, logits_to_keep=1), settings.device)

    def decode(model) -> float:  # the median time per new token, for the whole decode
        clock = TokenClock()
        with torch.no_grad():
            model.generate(prompt.to(settings.device), max_new_tokens=settings.decode_tokens, min_new_tokens=settings.decode_tokens,
                           do_sample=False, pad_token_id=0, streamer=clock)  # fmt: skip
        return clock.seconds_per_token() * settings.decode_tokens

    tables = []
    for work, unit, tokens in ((prefill, "prefill", batch.numel()), (decode, "decode", settings.decode_tokens)):
        # On CPU the models stay where they are between visits, so one warm-up each suffices.
        workloads = {name: visit(model, work) for name, model in models.items()}
        times = interleaved(workloads, settings.rounds, warm_every_visit=settings.device != "cpu")
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
