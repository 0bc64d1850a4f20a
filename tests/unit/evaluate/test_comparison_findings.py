"""What notebook 04 concludes from its table: speed differences are claimed only beyond the machine's noise."""

import pandas as pd

from helpers.evaluate import comparison


def table(spread_ms: float) -> pd.DataFrame:
    rows = {"depth-distilled": 0.75, "width-distilled": 0.85}
    return pd.DataFrame({"decode time / teacher": rows, "decode ms": {m: 1000.0 for m in rows}, "decode spread ms": {m: spread_ms for m in rows}})


def test_a_difference_beyond_the_noise_is_reported_as_one():
    text = comparison.speed_difference(table(spread_ms=30.0), "depth-distilled", "width-distilled", "decode")
    assert text == "decode 0.75 vs 0.85"


def test_a_difference_within_the_noise_is_said_to_be_none():
    text = comparison.speed_difference(table(spread_ms=200.0), "depth-distilled", "width-distilled", "decode")
    assert text.startswith("decode 0.75 vs 0.85 (no difference beyond this machine's noise") and "up to 20%" in text
