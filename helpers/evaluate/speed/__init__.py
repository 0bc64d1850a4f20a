"""Speed of several models measured so that they can be compared: one process, interleaved rounds, ratios.

Timing each model right after loading it, one after another, lets load effects and whatever else the
machine does land on one model. Here every round visits every model once (after a warm-up pass:
on the first visit, and on every visit where the visit moves the model onto a GPU), the models take
turns, and each model's time is divided by the reference's *in the same round*: the median of those
ratios survives a noisy machine far better than raw milliseconds. A decode is timed token by token and
counts its median interval, so a token held up by the machine does not count.

A machine busy with other work can still disturb most rounds. So the rounds go on, up to a cap, while any
model's median ratio is uncertain by more than `BOUND` (see `uncertainty`), and a ratio still that uncertain
at the cap is marked unreliable: every table, summary and figure shows it as such, not as a measurement.

Two sides of speed: prefill (one forward pass over a batch of full sequences that ends in the next token's
logits, as generation starts; latency and tokens per second) and decode (greedy generation of new tokens
one at a time, tokens per second), where depth pruning's fewer sequential layers show most.

To check a reported table, measure again in a fresh process and compare the ratios:

    python -m helpers.evaluate.speed --profile smollm2-135m --workdir ./workspace
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from helpers.errors import refuse

TOLERANCE = 0.10  # two measurements of a ratio agree if they differ by at most this (relative): `python -m helpers.evaluate.speed`
BOUND = TOLERANCE / 2  # a ratio is reliable within ±5% (95%): two reliable measurements then agree within TOLERANCE
MIN_ROUNDS = 3  # the fewest rounds an interquartile range, and so an uncertainty, can be read from
MAX_ROUNDS_FACTOR = 2  # a busy machine at most doubles the measurement: twice the planned rounds, twice their time


@dataclass(frozen=True)
class SpeedSettings:
    batch_size: int
    seq_length: int
    decode_tokens: int
    rounds: int  # planned interleaved rounds
    max_rounds: int  # the cap: rounds go on up to here (and twice the planned rounds' time) while a ratio is uncertain
    device: str
    dtype: str
    threads: int

    def __post_init__(self):
        if self.rounds < MIN_ROUNDS:
            raise refuse("rounds", f"{self.rounds} interleaved rounds give no uncertainty of a median", f"measure at least {MIN_ROUNDS}")
        if self.max_rounds < self.rounds:
            raise refuse("max_rounds", f"{self.max_rounds} is fewer than the {self.rounds} planned rounds", f"set it to {self.rounds} or more")

    def __str__(self) -> str:
        return (
            f"{self.device}, {self.dtype}, {self.threads} thread(s); prefill: batch {self.batch_size} x {self.seq_length} tokens; "
            f"decode: {self.decode_tokens} new tokens, batch 1, median time per token; "
            f"median of {self.rounds} interleaved rounds after warm-up, up to {self.max_rounds} (and {MAX_ROUNDS_FACTOR}x their "
            f"time) while a ratio's uncertainty exceeds ±{BOUND:.0%}"
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
        return statistics.median(b - a for a, b in itertools.pairwise(after_first))


def uncertainty(ratios: list[float]) -> float:
    """How far the median of `ratios` may be from the true ratio, relative to it: the half-width of its 95% interval.

    The interquartile range stands for the spread of a round (sigma = IQR / 1.349 if rounds were normal; a quarter
    of the rounds disturbed on either side leaves it alone), and the median of n rounds has the standard error
    sqrt(pi / 2) * sigma / sqrt(n): 95% within 1.96 * 1.2533 / 1.349 * IQR / sqrt(n) = 1.82 * IQR / sqrt(n). It
    shrinks as rounds are added: with the quiet rounds that follow a disturbance, or with the square root of n."""
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return 1.82 * (q3 - q1) / (median * math.sqrt(len(ratios)))


def ratios(times: dict[str, list[float]], reference: str) -> dict[str, list[float]]:
    """Each workload's seconds divided by the reference's in the same round."""
    return {name: [s / r for s, r in zip(seconds, times[reference])] for name, seconds in times.items()}


def settled(times: dict[str, list[float]], reference: str) -> bool:
    """Every workload's median ratio to the reference is known within BOUND."""
    return all(uncertainty(values) <= BOUND for values in ratios(times, reference).values())


def interleaved(workloads: dict[str, Callable[[], Callable[[], float]]], reference: str, rounds: int, max_rounds: int,
                warm_every_visit: bool) -> dict[str, list[float]]:  # fmt: skip
    """Seconds of each workload in each round: `rounds` rounds, then more until `settled`, but at most `max_rounds`, and
    only while the rounds so far took less than MAX_ROUNDS_FACTOR times the planned ones (warm-ups included).

    `workloads[name]()` prepares a visit (e.g. moves the model to the device) and returns the measurement: a call
    that does the work and returns the seconds it took. It runs once as a warm-up (lazy initialisation, the
    allocator, caches), its result dropped, on a workload's first visit, and on every visit if `warm_every_visit`
    (when a visit moves the model onto an accelerator, say)."""
    times: dict[str, list[float]] = {name: [] for name in workloads}
    start = time.perf_counter()
    for round_ in range(max_rounds):
        if round_ == rounds:
            planned = time.perf_counter() - start
        if round_ >= rounds and (settled(times, reference) or time.perf_counter() - start >= MAX_ROUNDS_FACTOR * planned):
            break
        for name, visit in workloads.items():
            measurement = visit()
            if round_ == 0 or warm_every_visit:
                measurement()
            times[name].append(measurement())
    return times


def summary(times: dict[str, list[float]], reference: str, work_per_call: float, unit: str) -> pd.DataFrame:
    """Median and spread of each workload, its throughput, its median per-round ratio to `reference`, that ratio's
    uncertainty and whether it is within BOUND (reliable), and the rounds measured."""
    rows = {}
    for name, values in ratios(times, reference).items():
        seconds = times[name]
        uncertain = round(uncertainty(values), 3)
        rows[name] = {
            f"{unit} ms": round(statistics.median(seconds) * 1e3, 2),
            f"{unit} spread ms": round((max(seconds) - min(seconds)) * 1e3, 2),
            f"{unit} tokens/s": round(work_per_call / statistics.median(seconds), 1),
            f"{unit} time / {reference}": round(statistics.median(values), 3),
            f"{unit} uncertainty": uncertain,
            f"{unit} reliable": uncertain <= BOUND,
            f"{unit} rounds": len(seconds),
        }
    return pd.DataFrame(rows).T.infer_objects()


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
        times = interleaved(workloads, reference, settings.rounds, settings.max_rounds, warm_every_visit=settings.device != "cpu")
        tables.append(summary(times, reference, tokens, unit))
    for model in models.values():
        model.to("cpu")
    return pd.concat(tables, axis=1)


SIDES = ("prefill", "decode")
RATIOS = tuple(f"{side} time / teacher" for side in SIDES)


def ratio_text(table: pd.DataFrame, model: str, side: str) -> str:
    """One ratio as it may be shown: "0.711", or "0.299 (unreliable: ±45%)" if its uncertainty exceeds BOUND."""
    text = f"{float(table.loc[model, f'{side} time / teacher']):.3f}"
    if not table.loc[model, f"{side} reliable"]:
        text += f" (unreliable: ±{float(table.loc[model, f'{side} uncertainty']):.0%})"
    return text


def marked(table: pd.DataFrame) -> pd.DataFrame:
    """`table` for display: each ratio as `ratio_text`, the columns that decide it folded into it."""
    shown = table.drop(columns=[f"{side} {what}" for side in SIDES for what in ("uncertainty", "reliable")], errors="ignore")
    for side, column in zip(SIDES, RATIOS):
        shown[column] = [ratio_text(table, model, side) for model in table.index]
    return shown


def unreliable_note(table: pd.DataFrame) -> str:
    """What a reader must know about the ratios marked unreliable in `table` ("" if none is)."""
    figures = [f"{model} {side}" for side in SIDES for model in table.index if not table.loc[model, f"{side} reliable"]]
    if not figures:
        return ""
    rounds = " and ".join(f"{int(table[f'{side} rounds'].max())} {side}" for side in SIDES)
    return (
        f"Unreliable (the machine was busy: after {rounds} rounds still uncertain by more than ±{BOUND:.0%}): "
        f"{', '.join(figures)}. Measure again on a quiet machine: python -m helpers.evaluate.speed --profile <profile>"
    )


def agreement(reported: pd.DataFrame, again: pd.DataFrame, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Each model's ratios to the teacher as reported and as measured again, and whether they agree within `tolerance`."""
    rows = {}
    for side, column in zip(SIDES, RATIOS):
        for model in reported.index:
            first, second = float(reported.loc[model, column]), float(again.loc[model, column])
            rows[(side, model)] = {"reported": first, "measured again": second, "difference": round(abs(second - first) / first, 3)}
    table = pd.DataFrame(rows).T
    table["agrees"] = table["difference"] <= tolerance
    return table


def rank_disagreements(reported: pd.DataFrame, again: pd.DataFrame, tolerance: float = TOLERANCE) -> list[str]:
    """Pairs of models the report ranks apart (ratios more than `tolerance` apart) that the re-measurement ranks the other way."""
    problems = []
    for column in RATIOS:
        for a in reported.index:
            for b in reported.index:
                first, second = reported.loc[a, column], reported.loc[b, column]
                if first > second * (1 + tolerance) and not again.loc[a, column] > again.loc[b, column]:
                    problems.append(f"{column}: reported {a} {first} > {b} {second}, measured again {again.loc[a, column]} <= {again.loc[b, column]}")
    return problems
