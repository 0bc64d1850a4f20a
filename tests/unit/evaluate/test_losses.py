"""Notebook 02's loss command: each checkpoint scored on the same windows, exactly as a direct forward pass does."""

import json
import subprocess

import numpy as np
import pytest
import torch
from fakes import megatron_data

from helpers.data.indexed import token_windows
from helpers.evaluate import losses


def small_qwen3(path, seed: int):
    """A 2-layer Qwen3 over a 512-token vocabulary, saved as a Hugging Face checkpoint (a tokenizer config beside it)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=32, tie_word_embeddings=False)  # fmt: skip
    Qwen3ForCausalLM(config).save_pretrained(path)
    (path / "tokenizer_config.json").write_text("{}")
    return path


def test_each_checkpoint_is_scored_on_the_same_windows_as_a_direct_forward_pass(tmp_path):
    from transformers import AutoModelForCausalLM

    prefix = megatron_data(tmp_path / "validation_text_document")  # 10 documents of 40 tokens
    models = {"a": small_qwen3(tmp_path / "a", 0), "b": small_qwen3(tmp_path / "b", 1)}
    report = tmp_path / "losses.json"
    command = losses.command(models, prefix, seq_length=64, windows=3, report=report)
    subprocess.run(command, check=True, capture_output=True, timeout=300)

    written = json.loads(report.read_text())
    windows = torch.from_numpy(token_windows(prefix, 64, 3))
    assert written["tokens"] == windows.numel() == 192
    for label, path in models.items():
        with torch.no_grad():
            logits = AutoModelForCausalLM.from_pretrained(path).eval()(windows).logits[:, :-1]
        expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()
        assert written["loss"][label] == pytest.approx(expected, rel=1e-5)
        per_window = [torch.nn.functional.cross_entropy(w, t).item() for w, t in zip(logits, windows[:, 1:])]
        assert written["loss per window"][label] == pytest.approx(per_window, abs=1e-5)
    assert written["loss"]["a"] != pytest.approx(written["loss"]["b"], rel=1e-3)  # two models, two losses


def test_a_folder_that_is_not_a_hugging_face_checkpoint_is_refused_before_loading(tmp_path):
    prefix = megatron_data(tmp_path / "validation_text_document")
    command = losses.command({"teacher": tmp_path / "missing"}, prefix, seq_length=64, windows=3, report=tmp_path / "r.json")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--checkpoint: teacher=" in result.stderr and "not a Hugging Face checkpoint" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_paired_difference_cancels_what_the_windows_share():
    from helpers.evaluate.perplexity import difference

    hard = np.array([2.0, 9.0, 4.0, 7.0])  # windows differ far more than the two models do
    better = difference(hard + 0.10 + np.array([0.01, -0.01, 0.02, -0.02]), hard)
    assert better.nats == pytest.approx(0.10) and better.standard_error == pytest.approx(0.0091287, rel=1e-4)
    assert better.exceeds(3) and not difference(hard, hard + 0.10).exceeds(0)
    unpaired_spread = np.std(hard, ddof=1) / 2
    assert better.standard_error < unpaired_spread / 100


def test_the_kl_divergence_from_the_teacher_is_zero_for_the_teacher_and_exact_for_another_model(tmp_path):
    from transformers import AutoModelForCausalLM

    from helpers.evaluate.perplexity import window_scores

    teacher, student = (AutoModelForCausalLM.from_pretrained(small_qwen3(tmp_path / name, seed)).eval() for name, seed in (("t", 0), ("s", 1)))
    windows = token_windows(megatron_data(tmp_path / "validation_text_document"), 64, 3)
    assert window_scores(teacher, windows, 2, teacher=teacher)["KL to teacher"] == pytest.approx([0, 0, 0], abs=1e-6)
    scores = window_scores(student, windows, 2, teacher=teacher)
    with torch.no_grad():
        ids = torch.from_numpy(windows)
        log_p, log_q = (torch.log_softmax(m(ids).logits[:, :-1], -1) for m in (teacher, student))
    expected = (log_p.exp() * (log_p - log_q)).sum(-1).mean(-1)
    assert scores["KL to teacher"] == pytest.approx(expected.tolist(), rel=1e-4) and (expected > 0).all()
    assert scores["loss"] == pytest.approx(window_scores(student, windows, 3)["loss"], rel=1e-6)  # the batch changes nothing
