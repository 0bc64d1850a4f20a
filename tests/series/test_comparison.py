"""Notebook 04's results: five models measured on the same tokens, distillation paying off."""

import math

import pytest

from helpers.evaluate import comparison, speed


@pytest.fixture(scope="module")
def results(ws):
    path = ws.results / "comparison.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: notebook 04 has not run in this work directory")
    return comparison.load(ws)


def test_all_five_models_were_measured_on_the_same_tokens(results):
    models = {row["model"]: row for row in results["models"]}
    assert list(models) == list(comparison.MODELS) and results["tokens"] > 0 and results["profile"] == "tiny"
    for row in models.values():
        for key in ("parameters", "non-embedding parameters", "test perplexity", "prefill ms", "prefill tokens/s", "decode tokens/s", "prefill time / teacher", "decode time / teacher"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["model"], key)
        assert isinstance(row["generation"], str) and row["generation"]


def test_distillation_recovers_perplexity_and_the_teacher_stays_best(results):
    ppl = {row["model"]: row["test perplexity"] for row in results["models"]}
    for kind in comparison.KINDS:
        assert ppl[f"{kind}-distilled"] < ppl[f"{kind}-pruned"]
    assert ppl["teacher"] == min(ppl.values())


def test_students_are_smaller_than_the_teacher(results):
    params = {row["model"]: row["parameters"] for row in results["models"]}
    assert all(params[m] < params["teacher"] for m in comparison.MODELS[1:])
    assert params["depth-pruned"] == params["depth-distilled"] and params["width-pruned"] == params["width-distilled"]


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
