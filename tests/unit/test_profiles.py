import dataclasses

import pytest
from archs import TEACHERS

from helpers.distill.budget import ModelShape, memory_per_device, plan
from helpers.errors import SettingError
from helpers.profiles import PROFILES, get_profile


def test_profiles_cover_the_four_scales_and_a_real_model_is_the_default(monkeypatch):
    monkeypatch.delenv("TUTORIAL_PROFILE", raising=False)
    assert set(PROFILES) == {"tiny", "smollm2-135m", "qwen3-1.7b", "qwen3-8b"}
    assert get_profile().name == "smollm2-135m" and PROFILES["smollm2-135m"].model.gguf is not None


def test_unknown_profile_is_refused_with_the_valid_names(monkeypatch):
    monkeypatch.delenv("TUTORIAL_PROFILE", raising=False)
    with pytest.raises(SettingError) as refused:
        get_profile("qwen3-80b")
    message = str(refused.value)
    assert message.startswith("PROFILE:") and all(name in message for name in PROFILES)


def test_environment_variable_overrides_the_parameter(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "qwen3-8b")
    assert get_profile("tiny").name == "qwen3-8b"
    monkeypatch.setenv("TUTORIAL_PROFILE", "nope")
    with pytest.raises(SettingError, match="TUTORIAL_PROFILE"):
        get_profile("tiny")


def test_qwen3_8b_profile_has_the_reference_settings():
    p = PROFILES["qwen3-8b"]
    assert p.model.hf_id == "Qwen/Qwen3-8B" and p.data.seq_length == 4096
    assert (p.prune.tp_size, p.prune.pp_size, p.prune.mbs, p.prune.num_train_samples) == (1, 2, 4, 1024)
    assert (p.prune.depth_num_layers, p.prune.width_ffn_hidden_size, p.prune.width_hidden_size) == (24, 9216, 3584)
    kd = p.distill
    assert (kd.devices, kd.tp_size, kd.gbs, kd.mbs, kd.lr, kd.min_lr) == (8, 8, 768, 8, 1e-4, 1e-5)
    assert plan(kd, p.data.seq_length).max_steps == 40


def test_budget_arithmetic_matches_the_reference():
    kd = plan(PROFILES["qwen3-8b"].distill, 4096)
    assert (kd.max_steps, kd.interval, kd.limit_val_batches) == (40, 4, 1)
    assert kd.tokens >= 125_000_000 > kd.tokens - kd.gbs * kd.seq_length  # rounded up to whole steps only


def test_interval_is_capped_at_100_steps():
    settings = dataclasses.replace(PROFILES["qwen3-8b"].distill, num_tokens=10_000 * 768 * 4096)
    assert plan(settings, 4096).interval == 100


@pytest.mark.parametrize("name", PROFILES)
def test_profile_targets_shrink_the_model_within_ModelOpt_granularity(name):
    p, source = PROFILES[name], TEACHERS[name]
    assert 0 < p.prune.depth_num_layers < source.num_layers
    assert p.prune.width_ffn_hidden_size < source.ffn_hidden_size and p.prune.width_ffn_hidden_size % 64 == 0
    assert p.prune.width_hidden_size < source.hidden_size and p.prune.width_hidden_size % 64 == 0
    assert len(p.prune.drop_layers) == source.num_layers - p.prune.depth_num_layers


def test_single_gpu_profile_fits_one_80_gb_gpu():
    p = PROFILES["qwen3-1.7b"]
    assert p.distill.devices == p.prune.devices == 1
    teacher = ModelShape(parameters=2_031_739_904, num_layers=28, hidden_size=2048, vocab_size=151936)
    student = ModelShape(parameters=1_600_000_000, num_layers=p.prune.depth_num_layers, hidden_size=2048, vocab_size=151936)
    memory = memory_per_device(student, teacher, p.distill, p.data.seq_length)
    assert 20 < memory.loc["total", "GB"] < 80
