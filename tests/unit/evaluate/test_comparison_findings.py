"""What notebook 04 concludes from its table: speed differences are claimed only beyond the ratios' uncertainty, and
ratios the measurement marked unreliable are not compared."""

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
