"""The conversion check: copies that differ only by rounding pass, in fp32 and in bf16 (also where rounding flips
many near-tie top-1 tokens), and copies whose norm weights were dropped fail in both. The bounds' calibration, on
SmolLM2: scripts/calibrate_logits_gate.py; the tiny teacher's bf16 rounding: tests/series/test_conversion.py."""

import functools

import pytest
import torch
from small_qwen3 import word_tokenizer

from helpers.conversion.logits import MIN_TOKENS, SAMPLE_TEXT, judge, sample_token_ids
from helpers.errors import SettingError

SHARP, FLAT = 10.0, 3.0  # output-layer scales: next-token entropy ~3 nats (a trained model's), ~5.5 (of ln 512 = 6.2)


def qwen3(spread: float):
    """A small random Qwen3 whose norm weights matter (as a trained model's do), its logits scaled by `spread`.

    Its norm weights spread over 0.2-3.0 make its bf16 rounding noisier than a real model's (cosine of the logits
    0.98), so that rounding alone flips about one top-1 token in ten: the near ties a pruned student is full of.
    """
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16, tie_word_embeddings=False)  # fmt: skip
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(spread)
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(0.2, 3.0)
    return model


def drop_layer_norms(model):
    """What NeMo's importer does without Transformer Engine: the per-layer norms stay at 1.0."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "input_layernorm" in name or "post_attention_layernorm" in name:
                parameter.fill_(1.0)
    return model


@functools.cache
def logits(spread: float, dtype: torch.dtype, norms_dropped: bool = False) -> torch.Tensor:
    """The next-token logits of `qwen3(spread)` (its norms dropped or not) in `dtype`, at MIN_TOKENS positions."""
    model = drop_layer_norms(qwen3(spread)) if norms_dropped else qwen3(spread)
    ids = torch.randint(0, 512, (4, MIN_TOKENS // 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.to(dtype)(ids).logits.float()


def test_fp32_copies_pass_when_equal_to_rounding():
    reference = logits(SHARP, torch.float32)
    assert judge(reference + 1e-5, reference, torch.float32).passed
    assert not judge(reference + 2e-3, reference, torch.float32).passed


@pytest.mark.parametrize("spread", [SHARP, FLAT])
def test_bf16_rounding_passes_though_it_flips_near_ties(spread):
    check = judge(logits(spread, torch.bfloat16), logits(spread, torch.float32), torch.bfloat16)
    assert check.passed, check
    assert check.top1_agreement < 0.95, check  # a bar on every position's top-1 token would fail this intact model
    assert check.decisive_positions > 0 and check.decisive_flips == 0, check


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("spread", [SHARP, FLAT])
def test_dropped_norm_weights_fail(spread, dtype):
    check = judge(logits(spread, dtype, norms_dropped=True), logits(spread, torch.float32), dtype)
    assert not check.passed and check.decisive_flips > 0, check


def test_chunked_judgement_covers_every_position():
    reference = logits(SHARP, torch.float32)
    candidate = reference.clone()
    candidate[-1, -1, 0] += 1.0  # the very last position, in the last chunk
    check = judge(candidate, reference, torch.float32)
    assert check.tokens == MIN_TOKENS and check.max_abs_diff == pytest.approx(1.0) and not check.passed


def test_report_names_the_criteria():
    reference = logits(SHARP, torch.float32)
    assert str(judge(reference, reference, torch.bfloat16)).startswith(
        "PASS (bfloat16: mean KL <= 0.05, same top-1 token wherever"
    )
    assert str(judge(reference, reference, torch.float32)).startswith(
        "PASS (float32: max |difference| <= 0.001, same top-1 token"
    )


def line_tokenizer(path):
    """A Hugging Face tokenizer that makes one token of each line."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("\n", behavior="removed")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(path)
    return path


def test_the_check_runs_on_enough_tokens(tmp_path):
    assert sample_token_ids(word_tokenizer(tmp_path / "words")).shape[1] >= MIN_TOKENS  # a token per word
    lines = len(SAMPLE_TEXT.splitlines())
    with pytest.raises(SettingError, match=f"tokenizer: .* makes {lines} tokens .*; the check needs {MIN_TOKENS}"):
        sample_token_ids(line_tokenizer(tmp_path / "lines"))
