"""The searched student (routes whose ModelOpt prunes to a parameter budget): every scored candidate under the
budget, the best-scored one chosen and exported as it was scored, in the search space ModelOpt itself printed."""

import ast
import json
import re

import pytest

from helpers.models.checkpoints import architecture, parameter_counts
from helpers.profiles import KINDS
from helpers.prune import bridge_steps, search
from helpers.routes import SEARCHED


@pytest.fixture
def record(ws, require):
    if SEARCHED not in ws.students:
        pytest.skip(f"the {ws.route} route's ModelOpt has no architecture search")
    return search.load(require(ws.pruned(SEARCHED) / search.RECORD, "02").parent)


def test_the_budget_is_the_larger_hand_picked_students_size(ws, record):
    assert record["budget"] == max(parameter_counts(ws.pruned(kind))["total"] for kind in KINDS)


def test_every_scored_candidate_is_under_the_budget_and_the_best_scored_is_chosen(profile, record):
    scored = record["scored"]
    assert 0 < len(scored) <= profile.prune.search.top_k and all(c["params"] <= record["budget"] for c in scored)
    assert record["chosen"] == max(scored, key=lambda c: c["score"])["config"]
    assert [c["params"] for c in scored] == sorted((c["params"] for c in scored), reverse=True)  # the largest first


def test_the_exported_student_has_the_chosen_architecture_and_its_score(ws, record):
    student, params = architecture(ws.pruned(SEARCHED)), parameter_counts(ws.pruned(SEARCHED))["total"]
    assert {name: getattr(student, name) for name in record["chosen"]} == record["chosen"]
    chosen = next(c for c in record["scored"] if c["config"] == record["chosen"])
    assert params == chosen["params"] <= record["budget"]  # ModelOpt's count of the candidate is the checkpoint's
    scores = json.loads((ws.results / bridge_steps.SCORES).read_text())["scores"]
    assert scores[str(ws.pruned(SEARCHED))] == pytest.approx(chosen["score"], abs=1e-5)  # scored again after export


def test_the_recorded_search_space_is_the_one_modelopt_searched(ws, record):
    log = (ws.logs / f"02-prune-{SEARCHED}.log").read_text()
    printed = {name: ast.literal_eval(values) for name, values in re.findall(r"Search space for (\w+): (\[[^\]]*\])", log)}
    assert printed == record["search_space"] and record["combinations"] == int(re.search(r"Total search space in consideration: (\d+)", log)[1])


def test_the_search_left_its_figure(ws, record):
    assert (ws.figure("02_search")).stat().st_size > 10_000


def test_a_hand_picked_student_inside_the_space_scores_as_its_candidate(ws, record):
    scores = json.loads((ws.results / bridge_steps.SCORES).read_text())["scores"]
    matched = 0
    for kind in KINDS:
        arch = architecture(ws.pruned(kind))
        same = [c for c in record["scored"] if all(getattr(arch, name) == value for name, value in c["config"].items())]
        if same:  # pruned from the same ranking to the same sizes: the same model
            matched += 1
            assert scores[str(ws.pruned(kind))] == pytest.approx(same[0]["score"], abs=1e-5)
    assert matched or pytest.skip("no hand-picked student's architecture was among the scored candidates")
