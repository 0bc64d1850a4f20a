"""The speed procedure: every model once per round, a warm-up before each timed pass, ratios within a round."""

import pytest
import torch

from helpers.evaluate import speed


@pytest.mark.parametrize("warm_every_visit", [True, False])
def test_rounds_interleave_the_models_after_a_warm_up(warm_every_visit):
    calls = []

    def workload(name):
        def prepare():
            calls.append(("visit", name))

            def measurement():
                calls.append(("run", name))
                return float(len(calls))

            return measurement

        return prepare

    times = speed.interleaved({name: workload(name) for name in ("teacher", "a", "b")}, rounds=3, warm_every_visit=warm_every_visit)
    warm = [("visit", "teacher"), ("run", "teacher"), ("run", "teacher"), ("visit", "a"), ("run", "a"), ("run", "a"),
            ("visit", "b"), ("run", "b"), ("run", "b")]  # fmt: skip
    timed = [("visit", "teacher"), ("run", "teacher"), ("visit", "a"), ("run", "a"), ("visit", "b"), ("run", "b")]
    # a warm-up run, then the timed run, model after model, round after round; without moves, one warm-up each
    assert calls == (warm * 3 if warm_every_visit else warm + timed * 2)
    assert times["teacher"][0] == 3.0  # what the timed run measured; the warm-up's result is dropped


class FakeClock:
    """perf_counter for code under test: time moves only when a fake workload says so."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(speed.time, "perf_counter", lambda: self.now)


def test_a_decode_counts_the_median_time_per_token_after_the_prompt(monkeypatch):
    clock, token_clock = FakeClock(monkeypatch), speed.TokenClock()
    for seconds in (0.0, 5.0, 0.1, 0.1, 9.0, 0.1):  # the prompt, its prefill, then tokens: one held up by the machine
        clock.now += seconds
        token_clock.put(None)
    assert token_clock.seconds_per_token() == pytest.approx(0.1)


def test_ratios_are_taken_within_each_round():
    # The machine slows down 10x in the last round: raw medians shift, per-round ratios do not.
    times = {"teacher": [1.0, 1.0, 10.0], "student": [0.5, 0.5, 5.0]}
    table = speed.summary(times, "teacher", work_per_call=100, unit="prefill")
    assert table.loc["student", "prefill time / teacher"] == 0.5 and table.loc["teacher", "prefill time / teacher"] == 1.0
    assert table.loc["student", "prefill spread ms"] == 4500.0 and table.loc["student", "prefill tokens/s"] == 200.0


def test_measure_reports_prefill_and_decode_for_every_model():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    def model(layers):
        config = Qwen3Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
                             num_key_value_heads=1, head_dim=16)  # fmt: skip
        return Qwen3ForCausalLM(config).eval()

    settings = speed.SpeedSettings(batch_size=2, seq_length=16, decode_tokens=4, rounds=2, device="cpu", dtype="float32", threads=1)
    threads = torch.get_num_threads()
    table = speed.measure({"teacher": model(4), "depth": model(2)}, "teacher", settings)
    assert list(table.index) == ["teacher", "depth"]
    assert {"prefill ms", "prefill time / teacher", "decode tokens/s", "decode time / teacher"} <= set(table.columns)
    assert table.loc["teacher", "decode time / teacher"] == 1.0 and (table["prefill ms"] > 0).all()
    assert torch.get_num_threads() == threads and "1 thread(s)" in str(settings) and "interleaved" in str(settings)


def test_a_re_measurement_agrees_within_the_tolerance_and_keeps_the_ranking():
    import pandas as pd

    reported = pd.DataFrame({"prefill time / teacher": [1.0, 0.75, 0.95], "decode time / teacher": [1.0, 0.70, 0.90]}, index=["teacher", "depth", "width"])
    close = reported * [1.0, 1.05]  # decode ratios 5% higher
    table = speed.agreement(reported, close)
    assert table["agrees"].all() and table.loc[("decode", "depth"), "difference"] == 0.05
    assert speed.rank_disagreements(reported, close) == []

    swapped = reported.copy()
    swapped.loc["depth", "prefill time / teacher"] = 1.2  # depth now slower than the teacher: 60% off, and ranked otherwise
    assert not speed.agreement(reported, swapped).loc[("prefill", "depth"), "agrees"]
    problems = speed.rank_disagreements(reported, swapped)
    assert problems and all(p.startswith("prefill time / teacher") for p in problems)
    assert any("teacher" in p and "depth" in p for p in problems)
