"""The model-arithmetic vocabulary (helpers/models/architecture.py) against published configs, real weights and
the distillation's parallel layout."""

import argparse
import json
from dataclasses import replace

import pytest
from archs import TEACHERS
from small_qwen3 import small_qwen3, word_tokenizer

from helpers.distill.budget import data_parallel_size, model_parallel_size
from helpers.distill.checks import data_parallel_problems
from helpers.models import checkpoints
from helpers.models.architecture import Architecture, weight_bytes
from helpers.profiles import PROFILES
from helpers.series.dry_run import HUB_CONFIGS


@pytest.mark.parametrize("name, hf_id", [("qwen3-8b", "Qwen--Qwen3-8B"), ("qwen3-1.7b", "Qwen--Qwen3-1.7B")])
def test_a_published_config_reads_as_the_teachers_architecture_and_back(name, hf_id):
    config = json.loads((HUB_CONFIGS / f"{hf_id}.json").read_text())
    arch = Architecture.from_hf_config(config)
    assert arch == TEACHERS[name]
    assert arch.hf_config() == {key: config[key] for key in arch.hf_config()}
    assert Architecture.from_hf_config(arch.hf_config()) == arch
    megatron = arch.megatron_config()
    assert megatron.pop("kv_channels") == 128 and megatron == {field: size for field, size in arch.as_dict().items() if field != "head_dim"}


def test_a_config_without_head_dim_splits_the_hidden_size_over_the_heads():
    config = TEACHERS["smollm2-135m"].hf_config()
    del config["head_dim"]
    assert Architecture.from_hf_config(config).head_dim == 576 // 9


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("small-qwen3")
    return small_qwen3(root / "model", word_tokenizer(root / "tokenizer"), layers=3)


def test_the_analytic_parameter_counts_are_the_ones_measured_on_real_weights(small_checkpoint):
    arch = checkpoints.architecture(small_checkpoint)
    assert arch == Architecture.from_hf_config(json.loads((small_checkpoint / "config.json").read_text()))
    assert arch.parameter_counts(tied_embeddings=False) == checkpoints.parameter_counts(small_checkpoint)


@pytest.mark.parametrize("tied", [False, True])
def test_the_analytic_total_is_what_transformers_builds(tied):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    arch = replace(TEACHERS["tiny"], vocab_size=1024)
    model = Qwen3ForCausalLM(Qwen3Config(**arch.hf_config(), tie_word_embeddings=tied))
    assert arch.parameter_counts(tied_embeddings=tied)["total"] == model.num_parameters()


def test_fp8_weights_take_one_byte_per_linear_layer_parameter():
    counts = TEACHERS["qwen3-8b"].parameter_counts(tied_embeddings=False)
    assert weight_bytes(counts, fp8=False) == 2 * counts["total"]
    assert weight_bytes(counts, fp8=False) - weight_bytes(counts, fp8=True) == counts["attention"] + counts["mlp"]
    assert weight_bytes(counts, fp8=False, unquantized_bytes=4) == 4 * counts["total"]


@pytest.mark.parametrize(
    "devices, num_nodes, tp, pp, cp, model_parallel, data_parallel",
    [(8, 1, 1, 1, 1, 1, 8), (8, 1, 2, 1, 1, 2, 4), (8, 2, 2, 2, 1, 4, 4), (8, 12, 2, 1, 2, 4, 24), (8, 2, 8, 2, 1, 16, 1)],
)
def test_data_parallel_size_is_the_processes_over_the_model_split(devices, num_nodes, tp, pp, cp, model_parallel, data_parallel):
    settings = replace(PROFILES["qwen3-8b"].distill, devices=devices, num_nodes=num_nodes, tp_size=tp, pp_size=pp, cp_size=cp, gbs=768, mbs=1)
    flags = argparse.Namespace(**{name: getattr(settings, name) for name in ("devices", "num_nodes", "tp_size", "pp_size", "cp_size", "gbs", "mbs")})
    for layout in (settings, flags):
        assert (model_parallel_size(layout), data_parallel_size(layout)) == (model_parallel, data_parallel)
        assert data_parallel_problems(layout) == []
    uneven = data_parallel_problems(replace(settings, gbs=data_parallel + 1))
    assert [problem.setting for problem in uneven] == ([] if data_parallel == 1 else ["--gbs"])
    assert all(f"x {data_parallel} data-parallel rank(s)" in problem.problem for problem in uneven)
