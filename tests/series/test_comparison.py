"""Notebook 04's results: five models measured on the same tokens, each student closer to the teacher after distillation.

On `tiny` the teacher trained for a minute and is barely better than word frequencies: pruning two of its six
layers or a quarter of its width costs hundredths of a nat, and what 12 steps of distillation do to the test loss
lies within a few standard errors either way (depth won back +0.036 ± 0.006 nats with the bf16 teacher, -0.006 ±
0.005 with the fp32 one; width -0.033 ± 0.013 and -0.015 ± 0.012). What distillation optimises, the KL divergence
from the teacher, falls by 19 and 30 standard errors (bf16 teacher; fp32: 25 and 73): that is the claim that holds on
every CPU, with a margin of 9 over NOISE. `make run` on the real model shows the losses recovering (README).
"""

import math

from helpers.evaluate import comparison, speed
from helpers.evaluate.perplexity import NOISE, difference


def test_every_model_was_measured_on_the_same_tokens(profile, ws, results):
    models = {row["model"]: row for row in results["models"]}
    assert list(models) == list(comparison.models(ws)) and results["tokens"] > 0 and results["profile"] == "tiny"
    for row in models.values():
        for key in ("parameters", "non-embedding parameters", "test perplexity", "prefill ms", "prefill tokens/s", "decode tokens/s", "prefill time / teacher", "decode time / teacher"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["model"], key)
        assert isinstance(row["generation"], str) and row["generation"]
        assert (row["KL to teacher"] == 0) == (row["model"] == "teacher") and row["KL to teacher"] >= 0
    assert set(models) <= set(results["per_window"]) and {len(v["loss"]) for v in results["per_window"].values()} == {profile.evaluation.ppl_windows}


def test_the_results_name_the_route_and_the_versions_that_produced_them(results, route):
    from helpers.environment import EXPECTED

    assert results["route"] == route.name and set(results["versions"]) == set(route.packages)
    for package, prefix in EXPECTED[route.name].items():
        assert results["versions"][package].startswith(prefix), (package, results["versions"])


def test_distillation_brings_each_student_closer_to_the_teacher(ws, results):
    """What distillation minimises, on test text neither model trained on: the KL divergence from the teacher's
    next-token distribution falls by more than NOISE standard errors (`perplexity.difference`)."""
    per_window = results["per_window"]
    for kind in ws.students:
        closer = difference(per_window[f"{kind}-pruned"]["KL to teacher"], per_window[f"{kind}-distilled"]["KL to teacher"])
        assert closer.exceeds(NOISE), f"{kind}: distillation lowered the KL divergence from the teacher by {closer}"


def test_students_are_smaller_than_the_teacher(ws, results):
    params = {row["model"]: row["parameters"] for row in results["models"]}
    assert all(params[m] < params["teacher"] for m in comparison.models(ws)[1:])
    assert all(params[f"{kind}-pruned"] == params[f"{kind}-distilled"] for kind in ws.students)


def test_the_series_left_its_figures(ws):
    expected = {"01_document_lengths", "02_layer_importance", "02_width_importance", "02_parameters", "02_losses", "03_kd_curves", "04_kd_curves", "04_tradeoffs", "04_speed"}
    assert expected <= {p.stem for p in ws.figures.glob("*.png") if p.stat().st_size > 10_000}


def test_speed_was_measured_interleaved_against_the_teacher(results, profile):
    models = {row["model"]: row for row in results["models"]}
    assert models["teacher"]["prefill time / teacher"] == models["teacher"]["decode time / teacher"] == 1.0
    assert "interleaved rounds after warm-up" in results["speed"] and "thread" in results["speed"]
    planned = profile.evaluation.speed_rounds
    cap = speed.MAX_ROUNDS_FACTOR * planned
    for side in speed.SIDES:
        (rounds,) = {row[f"{side} rounds"] for row in models.values()}  # every model in every round
        assert planned <= rounds <= cap
        assert models["teacher"][f"{side} reliable"] and models["teacher"][f"{side} uncertainty"] == 0
        for row in models.values():
            assert row[f"{side} reliable"] is (row[f"{side} uncertainty"] <= speed.BOUND), (row["model"], side)
            assert row[f"{side} reliable"] or rounds > planned, f"{row['model']} {side}: left unreliable without measuring again"
