"""The logits check: two copies of one model, run on the same tokens, must give the same next-token logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from helpers import hf_model, nemo_model

# When two copies of one model count as the same, by weight dtype. fp32 copies must agree to rounding on every
# logit. In bf16 the kernels of two libraries round differently at every layer, so single logits may differ by
# several bf16 steps (0.25 apart for logits in [32, 64)) without anything being wrong: the criterion is the mean
# KL divergence of the next-token distributions. Measured on the tiny Qwen3, HF bf16 against HF fp32: 6e-5 nats
# after 6 layers, with the hidden states' relative error growing linearly with depth (0.2% -> 0.6%); extrapolated
# to Qwen3-8B's 36 layers ~1.5e-3 nats. The bound leaves a margin of ~7 over that.
FP32_MAX_ABS_DIFF = 1e-3
HALF_PRECISION_MAX_KL = 1e-2
MIN_TOP1_AGREEMENT = 0.95
SAMPLE_TEXT = (
    " = Pruning and distillation = \n Structured pruning removes whole layers, attention heads or "
    "neurons from a trained language model. Knowledge distillation then trains the smaller student "
    "to reproduce the predictions of the original teacher, which recovers most of the lost accuracy. \n"
)


@dataclass(frozen=True)
class LogitsCheck:
    """How closely two copies of one model agree on the next-token logits of the same tokens."""

    max_abs_diff: float
    mean_abs_diff: float
    mean_kl: float  # KL(reference || candidate) of the next-token distributions, nats per position
    min_cosine: float  # of the logit vectors, per position (reported: a shared component keeps it near 1)
    top1_agreement: float
    dtype: str
    tokens: int

    @property
    def passed(self) -> bool:
        close = self.max_abs_diff <= FP32_MAX_ABS_DIFF if self.dtype == "float32" else self.mean_kl <= HALF_PRECISION_MAX_KL
        return close and self.top1_agreement >= MIN_TOP1_AGREEMENT

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        criterion = f"max |difference| <= {FP32_MAX_ABS_DIFF:g}" if self.dtype == "float32" else f"mean KL <= {HALF_PRECISION_MAX_KL:g}"
        return (
            f"{verdict} ({self.dtype}: {criterion}, top-1 >= {MIN_TOP1_AGREEMENT:.0%}): max |difference| {self.max_abs_diff:.2e}, "
            f"mean {self.mean_abs_diff:.2e}, mean KL {self.mean_kl:.2e}, min cosine {self.min_cosine:.5f}, "
            f"same top-1 token at {self.top1_agreement:.1%} of {self.tokens} positions"
        )


def judge(candidate: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> LogitsCheck:
    """Compare next-token logits [batch, sequence, vocabulary] of a converted model with the original's."""
    candidate, reference = candidate.float(), reference.float()
    difference = (candidate - reference).abs()
    log_p, log_q = torch.log_softmax(reference, -1), torch.log_softmax(candidate, -1)
    return LogitsCheck(
        max_abs_diff=difference.max().item(),
        mean_abs_diff=difference.mean().item(),
        mean_kl=(log_p.exp() * (log_p - log_q)).sum(-1).mean().item(),
        min_cosine=torch.nn.functional.cosine_similarity(candidate, reference, dim=-1).min().item(),
        top1_agreement=(candidate.argmax(-1) == reference.argmax(-1)).float().mean().item(),
        dtype=str(dtype).removeprefix("torch."),
        tokens=reference.shape[0] * reference.shape[1],
    )


def sample_token_ids(tokenizer_dir: Path, text: str = SAMPLE_TEXT) -> torch.Tensor:
    """`text` tokenized by the model's own tokenizer, as a batch of one."""
    from transformers import AutoTokenizer

    return torch.tensor([AutoTokenizer.from_pretrained(tokenizer_dir)(text)["input_ids"]])


def compare_logits(checkpoint: Path, hf_dir: Path, token_ids: torch.Tensor) -> LogitsCheck:
    """Next-token logits of the NeMo checkpoint against the Hugging Face one, on the same tokens."""
    with hf_model.loaded(hf_dir) as reference_model, torch.no_grad():
        dtype = reference_model.dtype
        reference = reference_model(token_ids.to(reference_model.device)).logits.float().cpu()
    with nemo_model.loaded(checkpoint) as module:
        candidate = nemo_model.logits(module, token_ids)[..., : reference.shape[-1]]
    return judge(candidate, reference, dtype)
