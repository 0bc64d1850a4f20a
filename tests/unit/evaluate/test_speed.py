"""The speed procedure: every model once per round, a warm-up before each timed pass, ratios within a round, more
rounds while a ratio is uncertain, up to a cap."""

import pytest
import torch

from helpers.errors import SettingError
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

    workloads = {name: workload(name) for name in ("teacher", "a", "b")}
    times = speed.interleaved(workloads, "teacher", rounds=3, max_rounds=3, warm_every_visit=warm_every_visit)
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


TRUE = {"teacher": 1.0, "depth": 0.7, "width": 0.8}  # seconds per visit on a quiet machine


def busy_machine(clock: FakeClock, slowed) -> dict:
    """Workloads timed by `speed`'s own clock reading, on a machine where `slowed(round_, name)` is the factor another
    process slows that visit by (1: quiet). Every model's quiet visits jitter by up to 1%, as on a quiet CPU."""
    rounds = dict.fromkeys(TRUE, -1)

    def workload(name):
        def prepare():
            rounds[name] += 1
            jitter = 1 + 0.01 * ((rounds[name] * 7 + len(name)) % 3 - 1)
            seconds = TRUE[name] * jitter * slowed(rounds[name], name)
            return lambda: speed._seconds(lambda: setattr(clock, "now", clock.now + seconds), "cpu")

        return prepare

    return {name: workload(name) for name in TRUE}


def measured(monkeypatch, slowed, rounds=3, max_rounds=6):
    times = speed.interleaved(busy_machine(FakeClock(monkeypatch), slowed), "teacher", rounds, max_rounds, warm_every_visit=True)
    return speed.summary(times, "teacher", work_per_call=100, unit="prefill")


def test_a_quiet_machine_measures_the_planned_rounds_only(monkeypatch):
    table = measured(monkeypatch, slowed=lambda round_, name: 1.0)
    assert (table["prefill rounds"] == 3).all() and table["prefill reliable"].all()
    assert table.loc["depth", "prefill time / teacher"] == pytest.approx(0.7, rel=0.021)  # two visits jitter by 1%


def test_a_disturbance_that_stops_costs_extra_rounds_and_leaves_the_true_ratios(monkeypatch):
    # Another process takes the core whenever the teacher runs in the first round: every student looks 3x faster there.
    table = measured(monkeypatch, slowed=lambda round_, name: 3.0 if round_ == 0 and name == "teacher" else 1.0)
    assert (table["prefill rounds"] == 5).all(), "rounds go on until the disturbed round is outvoted, not to the cap"
    assert table["prefill reliable"].all() and (table["prefill uncertainty"] <= speed.BOUND).all()
    for name, seconds in TRUE.items():
        assert table.loc[name, "prefill time / teacher"] == pytest.approx(seconds, rel=0.021)


def test_a_disturbance_that_lasts_past_the_cap_is_marked_unreliable(monkeypatch):
    # Every other round, the teacher's visit is slowed: half the ratios are a third of the true ones, to the end.
    table = measured(monkeypatch, slowed=lambda round_, name: 3.0 if round_ % 2 == 0 and name == "teacher" else 1.0)
    assert (table["prefill rounds"] == 6).all(), "the cap ends the measurement"
    students = table.drop(index="teacher")
    assert not students["prefill reliable"].any() and (students["prefill uncertainty"] > speed.BOUND).all()
    assert table.loc["teacher", "prefill reliable"]  # the reference's ratio to itself is 1 in every round
    uncertain = table.loc["depth", "prefill uncertainty"]
    assert speed.ratio_text(table, "depth", "prefill") == f"{table.loc['depth', 'prefill time / teacher']:.3f} (unreliable: ±{uncertain:.0%})"


def test_extra_rounds_stop_once_they_took_as_long_as_the_planned_ones(monkeypatch):
    # The first round's teacher is disturbed, then the whole machine slows 20x: one extra round costs more than the
    # planned three (warm-ups included: 9 + 2.5 + 2.5 s against 50 s), so it is the last one, the ratios still unsettled.
    table = measured(monkeypatch, slowed=lambda round_, name: 3.0 if round_ == 0 and name == "teacher" else (20.0 if round_ >= 3 else 1.0))
    assert (table["prefill rounds"] == 4).all() and not table.loc["depth", "prefill reliable"]


def test_the_uncertainty_of_a_median_shrinks_with_the_spread_and_the_rounds():
    assert speed.uncertainty([0.7] * 5) == 0.0
    assert speed.uncertainty([0.69, 0.70, 0.71]) == pytest.approx(1.82 * 0.01 / (0.70 * 3**0.5))  # IQR 0.01 of 3 rounds
    quartiles = [0.69, 0.69, 0.70, 0.71, 0.71]  # IQR 0.02 in 5 rounds, and in 4 times as many
    assert speed.uncertainty(quartiles * 4) == pytest.approx(speed.uncertainty(quartiles) / 2)
    assert speed.uncertainty([0.7, 0.7, 0.7, 0.7, 0.23]) == 0.0  # a disturbed round outside the middle half is outvoted


@pytest.mark.parametrize(("rounds", "max_rounds", "setting"), [(2, 4, "rounds"), (3, 2, "max_rounds")])
def test_settings_that_cannot_give_an_uncertainty_are_refused(rounds, max_rounds, setting):
    with pytest.raises(SettingError, match=rf"^{setting}: .*\n  fix: "):
        speed.SpeedSettings(batch_size=1, seq_length=8, decode_tokens=2, rounds=rounds, max_rounds=max_rounds, device="cpu", dtype="float32", threads=1)


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
    assert table.loc["student", "prefill uncertainty"] == 0.0 and table.loc["student", "prefill reliable"]


def test_measure_reports_prefill_and_decode_for_every_model():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    def model(layers):
        config = Qwen3Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
                             num_key_value_heads=1, head_dim=16)  # fmt: skip
        return Qwen3ForCausalLM(config).eval()

    settings = speed.SpeedSettings(batch_size=2, seq_length=16, decode_tokens=4, rounds=3, max_rounds=3, device="cpu", dtype="float32", threads=1)
    threads = torch.get_num_threads()
    table = speed.measure({"teacher": model(4), "depth": model(2)}, "teacher", settings)
    assert list(table.index) == ["teacher", "depth"]
    assert {"prefill ms", "prefill time / teacher", "prefill reliable", "decode tokens/s", "decode uncertainty"} <= set(table.columns)
    assert table.loc["teacher", "decode time / teacher"] == 1.0 and (table["prefill ms"] > 0).all()
    assert torch.get_num_threads() == threads and "1 thread(s)" in str(settings) and "interleaved" in str(settings)
    assert (table["decode rounds"] == 3).all() and table["prefill reliable"].dtype == bool


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
