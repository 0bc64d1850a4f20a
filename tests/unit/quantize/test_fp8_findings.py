"""What notebook 04 says about FP8 from its table: each model's cost in test loss judged against the noise of the
test windows, the bytes it keeps, and the smallest checkpoint against the teacher; where FP8 did not run, it says so."""

import numpy as np
import pandas as pd

from helpers.quantize import steps


def models(fp8_cost: float) -> tuple[pd.DataFrame, dict]:
    """Teacher and one distilled student, each quantized, FP8 adding `fp8_cost` nats on 16 windows."""
    rng = np.random.default_rng(0)
    base = rng.uniform(3, 6, 16)
    loss = {"teacher": base, "depth-distilled": base + 0.5 + rng.normal(0, 0.01, 16)}
    alternating = 0.002 * (-1) ** np.arange(16)  # noise that averages to nothing
    loss |= {f"{label}-fp8": values + fp8_cost + alternating for label, values in list(loss.items())}
    ppl = {label: float(np.exp(values.mean())) for label, values in loss.items()}
    table = pd.DataFrame({
        "test perplexity": {"teacher": ppl["teacher"], "depth-distilled": ppl["depth-distilled"], "depth-pruned": 99.0},
        "KL to teacher": {"teacher": 0.0, "depth-distilled": 0.3, "depth-pruned": 0.9},
        "weights MB": {"teacher": 538.1, "depth-distilled": 410.6, "depth-pruned": 410.6},
        "FP8 weights MB": {"teacher": 219.6, "depth-distilled": 172.3},
        "FP8 test perplexity": {"teacher": ppl["teacher-fp8"], "depth-distilled": ppl["depth-distilled-fp8"]},
        "FP8 KL to teacher": {"teacher": 0.04, "depth-distilled": 0.33},
    })  # fmt: skip
    return table, {label: {"loss": values.tolist()} for label, values in loss.items()}


def test_a_cost_beyond_the_noise_is_reported_with_the_bytes_kept():
    table, per_window = models(fp8_cost=0.03)
    lines = steps.findings(table, per_window).splitlines()
    assert lines[0].startswith("teacher: FP8 costs +0.03") and "(within" not in lines[0]
    assert lines[0].endswith("keeps 41% of the weights' bytes (538.1 -> 219.6 MB).")
    assert lines[1].startswith("depth-distilled: FP8 costs") and "42% of the weights' bytes (410.6 -> 172.3 MB)" in lines[1]
    assert lines[2].startswith("The smallest checkpoint, depth-distilled in FP8, holds 32% of the teacher's bytes") and "beyond the noise" in lines[2]


def test_a_cost_within_the_noise_is_said_to_be_none():
    table, per_window = models(fp8_cost=0.0)
    assert "(within the noise of these windows" in steps.findings(table, per_window).splitlines()[0]


def test_the_overview_shows_each_quantized_model_beside_its_source():
    table, _ = models(fp8_cost=0.03)
    shown = steps.overview(table)
    assert list(shown.index) == ["teacher", "depth-distilled"]  # the pruned student was not quantized
    assert list(shown.columns) == ["MB", "FP8 MB", "FP8 / source size", "perplexity", "FP8 perplexity", "KL to teacher", "FP8 KL to teacher"]
    assert shown.loc["teacher", "FP8 / source size"] == 0.408


def test_without_fp8_the_findings_say_it_was_not_measured_and_the_overview_shows_the_sizes():
    table, per_window = models(fp8_cost=0.03)
    table = table.drop(columns=[column for column in table if column.startswith("FP8")])
    assert steps.findings(table, per_window).startswith("FP8 was not measured here")
    assert list(steps.overview(table).columns) == ["weights MB", "test perplexity", "KL to teacher"]
