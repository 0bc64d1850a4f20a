"""Pruning to a parameter budget: the search space ModelOpt builds, the candidates it scores, and the budgets and
limits refused before a model is loaded (what ModelOpt prints for the same model is checked in tests/series)."""

import pytest

from helpers.errors import SettingError
from helpers.profiles import PROFILES
from helpers.prune import bridge, search
from helpers.prune.checks import PruneFacts
from helpers.series.dry_run import published_teacher, search_budget

QWEN3_8B = published_teacher("Qwen/Qwen3-8B")
LIMITS = {"channel_divisor": None, "max_width_pruning": 0.4, "max_depth_pruning": 0.2, "hparams_to_skip": (), "top_k": 10, "score_func": "mmlu_5pct"}


def problems(budget: float, **changes):
    return search.problems(QWEN3_8B.arch, QWEN3_8B.tied_embeddings, budget, **(LIMITS | changes), names=bridge.SEARCH_FLAGS)


def test_qwen3_8b_is_searched_over_modelopts_default_grid_within_the_limits():
    space = search.search_space(QWEN3_8B.arch, None, 0.4, 0.2)
    assert space == {
        "hidden_size": list(range(2560, 4097, 256)),  # 16 multiples of 256, the top 60%
        "ffn_hidden_size": list(range(7680, 12289, 512)),  # 24 multiples of 512, the top 60%
        "num_attention_heads": [24, 32],  # in multiples of the 8 query groups
        "num_layers": [30, 32, 34, 36],  # 18 even counts, the top 80%
    }
    assert len(search.candidates(QWEN3_8B.arch, space, False)) == 7 * 10 * 2 * 4


def test_the_scored_candidates_are_the_largest_under_the_budget():
    space = search.search_space(QWEN3_8B.arch, None, 0.4, 0.2)
    scored = search.under_budget(QWEN3_8B.arch, space, False, 6e9, 10)
    others = [params for _, params in search.candidates(QWEN3_8B.arch, space, False) if params <= 6e9][10:]
    assert len(scored) == 10 and all(params <= 6e9 for _, params in scored)
    assert min(params for _, params in scored) >= max(others)


def test_skipped_sizes_and_a_finer_step_change_the_space():
    space = search.search_space(QWEN3_8B.arch, 128, 0.4, 0.2, skip=("num_attention_heads",))
    assert "num_attention_heads" not in space and space["hidden_size"][:2] == [2560, 2688]


def test_the_profiles_budgets_are_within_what_their_searches_allow():
    assert problems(6e9) == []
    assert search_budget(PROFILES["qwen3-8b"]) == 6_000_000_000
    assert search_budget(PROFILES["qwen3-1.7b"]) == 1_317_886_976  # the depth student (20 layers), above the width one (1.27B)


@pytest.mark.parametrize(
    ("budget", "changes", "flag", "says"),
    [
        (9e9, {}, "--prune_target_params", "nothing needs pruning"),
        (3e9, {}, "--prune_target_params", "the search's smallest candidate has"),
        (6e9, {"max_width_pruning": 1.4}, "--max_width_pruning", "is not a fraction"),
        (6e9, {"top_k": 0}, "--top_k", "at least one candidate"),
        (6e9, {"hparams_to_skip": ("num_query_groups",)}, "--hparams_to_skip", "not sizes the search combines"),
        (6e9, {"score_func": "mmlu"}, "--prune_score_func", "no score function"),
    ],
)
def test_a_search_that_cannot_work_is_refused_naming_the_flag(budget, changes, flag, says):
    found = problems(budget, **changes)
    assert [p.setting for p in found] == [flag] and says in found[0].problem


def test_the_entry_point_refuses_a_budget_before_loading(tmp_path):
    args = bridge.parser().parse_args(["--hf_model_name_or_path", "teacher", "--output_hf_path", str(tmp_path / "out"), "--prune_target_params", "9e9",
                                       "--data_paths", "data", "--seq_length", "4096", "--prune_score_func", "val_loss"])  # fmt: skip
    with pytest.raises(SettingError) as refused:
        bridge.check_args(args, PruneFacts(source=QWEN3_8B.arch))
    assert {p.setting for p in refused.value.problems} == {"--prune_target_params", "--score_data_path"}
