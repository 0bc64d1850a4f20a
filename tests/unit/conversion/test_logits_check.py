"""The conversion check in fp32: copies agree to rounding, and dropped norms fail (bf16: tests/series/test_conversion.py)."""

import torch

from helpers.conversion.logits import judge


def qwen3(norms_random: bool = True):
    """A small random Qwen3 whose norm weights matter (as a trained model's do) and whose logits are spread."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16, tie_word_embeddings=False)  # fmt: skip
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40)  # logits with a trained model's spread (std ~5 nats)
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.uniform_(0.2, 3.0)
    return model


def logits(model, dtype):
    ids = torch.randint(0, 512, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.to(dtype)(ids).logits.float()


def drop_layer_norms(model):
    """What NeMo's importer does without Transformer Engine: the per-layer norms stay at 1.0."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "input_layernorm" in name or "post_attention_layernorm" in name:
                parameter.fill_(1.0)
    return model


def test_fp32_copies_pass_only_when_equal_to_rounding():
    reference = logits(qwen3(), torch.float32)
    assert judge(reference + 1e-5, reference, torch.float32).passed
    check = judge(logits(drop_layer_norms(qwen3()), torch.float32), reference, torch.float32)
    assert not check.passed and check.max_abs_diff > 1e-2


def test_report_names_the_criterion():
    reference = logits(qwen3(), torch.float32)
    assert "mean KL <= 0.01" in str(judge(reference, reference, torch.bfloat16))
    assert str(judge(reference, reference, torch.float32)).startswith("PASS (float32: max |difference| <= 0.001")
