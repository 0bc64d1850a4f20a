"""What notebook 04 concludes from its table: speed differences are claimed only beyond the ratios' uncertainty, and
ratios the measurement marked unreliable are not compared; loss differences count only beyond the noise of the test
windows."""

import re

import numpy as np
import pandas as pd

from helpers.evaluate import comparison


def table(uncertainty: float, reliable: bool = True) -> pd.DataFrame:
    rows = {"depth-distilled": 0.75, "width-distilled": 0.85}
    return pd.DataFrame({"decode time / teacher": rows, "decode uncertainty": dict.fromkeys(rows, uncertainty), "decode reliable": dict.fromkeys(rows, reliable)})


def test_a_difference_beyond_the_uncertainty_is_reported_as_one():
    text = comparison.speed_difference(table(uncertainty=0.03), "depth-distilled", "width-distilled", "decode")
    assert text == "decode 0.750 vs 0.850"  # 0.10 apart, beyond 0.75 * 3% + 0.85 * 3% = 0.048


def test_a_difference_within_the_uncertainty_is_said_to_be_none():
    text = comparison.speed_difference(table(uncertainty=0.07), "depth-distilled", "width-distilled", "decode")
    assert text == "decode 0.750 vs 0.850 (no difference beyond the measurement's uncertainty: 0.100 apart, within ±0.112)"


def test_unreliable_ratios_are_marked_and_not_compared():
    text = comparison.speed_difference(table(uncertainty=0.6, reliable=False), "depth-distilled", "width-distilled", "decode")
    assert text.startswith("decode 0.750 (unreliable: ±60%) vs 0.850 (unreliable: ±60%) (not compared: the machine was too busy")


def five_models(won_back: float) -> tuple[pd.DataFrame, dict]:
    """A comparison where each cut costs 0.2 nats on 16 windows and distillation wins back `won_back` of it."""
    rng = np.random.default_rng(0)
    base = rng.uniform(3, 6, 16)  # windows differ far more than the models do
    jitter = lambda: rng.normal(0, 0.01, 16)  # noqa: E731
    loss = {"teacher": base, "depth-pruned": base + 0.2 + jitter(), "width-pruned": base + 0.2 + jitter()}
    loss |= {f"{kind}-distilled": loss[f"{kind}-pruned"] - won_back + jitter() for kind in ("depth", "width")}
    kl = {"teacher": 0.0, "depth-pruned": 0.2, "width-pruned": 0.25, "depth-distilled": 0.1, "width-distilled": 0.2}
    table = pd.DataFrame({
        "test perplexity": {m: float(np.exp(v.mean())) for m, v in loss.items()}, "parameters": dict.fromkeys(loss, 1e8),
        "KL to teacher": kl, **{f"{side} time / teacher": dict.fromkeys(loss, 1.0) for side in ("prefill", "decode")},
        **{f"{side} uncertainty": dict.fromkeys(loss, 0.01) for side in ("prefill", "decode")},
        **{f"{side} reliable": dict.fromkeys(loss, True) for side in ("prefill", "decode")},
    })  # fmt: skip
    kl_per_window = {m: value * (1 + jitter()) for m, value in kl.items()}
    return table, {m: {"loss": v.tolist(), "KL to teacher": kl_per_window[m].tolist()} for m, v in loss.items()}


def test_what_distillation_won_back_is_a_share_only_beyond_the_noise():
    depth = comparison.findings(*five_models(won_back=0.1)).split("\n")[0]
    assert re.search(r"cost \+0\.19\d\d ± 0\.00\d\d nats .* won back \+0\.(09|10)\d\d ± 0\.00\d\d nats, (4[89]|5[012])% of it", depth), depth
    assert "KL divergence from the teacher 0.2000 -> 0.1000 nats per token (-50%)." in depth and "within the noise" not in depth


def test_a_gain_within_the_noise_is_called_so_and_no_student_is_called_ahead():
    text = comparison.findings(*five_models(won_back=0.0))
    depth = text.split("\n")[0]
    assert "distillation won back" in depth and "nats (within the noise of these windows: ±0.0" in depth
    assert "% of it" not in depth and "neither is ahead" in text.split("\n")[-1]
