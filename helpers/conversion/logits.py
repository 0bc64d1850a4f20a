"""The logits check: two copies of one model, run on the same tokens, must give the same next-token logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.conversion import nemo_model
from helpers.conversion.sample_text import SAMPLE_TEXT
from helpers.errors import refuse
from helpers.models import hf_model

# When two copies of one model count as the same: both criteria below. The bf16 bounds are re-derived by
# scripts/calibrate_logits_gate.py: Hugging Face fp32 against the same model in bf16, on a CPU that computes bf16
# natively (Xeon Sapphire Rapids, AMX), over SAMPLE_TEXT and 2,048 held-out tokens, extrapolated to Qwen3-8B.
#
# 1. Close. fp32 copies must agree to rounding on every logit. In bf16 the kernels of two libraries round
#    differently at every layer, so single logits may differ by several bf16 steps (0.25 apart for logits in
#    [32, 64)) without anything being wrong: the criterion is the mean KL divergence of the next-token
#    distributions. Measured worst: 3.9e-3 nats, on a copy of SmolLM2-135M without 9 of its 30 layers (as flat as
#    a depth-pruned student; the intact model 1.2e-3, the tiny Qwen3 9e-5). For Qwen3-8B: the hidden states'
#    relative error grows with depth at most linearly (SmolLM2: 0.45% after layer 1, 0.91% after 12, 1.07% after
#    24), the KL as its square: x (36 / 21)^2 = 2.9; two bf16 libraries differ from each other by at most the sum
#    of their distances to fp32, which at most doubles the error and quadruples the KL. 3.9e-3 x 2.9 x 4 = 4.6e-2:
#    the bound 5e-2. Norm weights dropped by an import give 10-30 nats on SmolLM2.
# 2. Same decisions. Wherever the reference's top-1 token leads its runner-up by more than DECISIVE_MARGIN standard
#    deviations of that position's logits, the candidate must pick the same token, at every such position. A flip
#    where the lead is smaller is rounding deciding a near tie, not a fault: in bf16 the intact SmolLM2 keeps 96.9%
#    of its top-1 tokens over SAMPLE_TEXT, the flat copy 95.3% (a bar of 95% on every position fails at random). The
#    largest lead bf16 erased: 0.22 standard deviations (the flat copy; the intact model 0.13, the tiny Qwen3
#    0.06); x 36 / 21 for depth and x 2 for two libraries: 0.76, the margin 0.8. It is relative because the noise
#    scales with the logits' spread (the hidden state's relative error through the output layer). 9-15% of
#    SmolLM2's positions are decisive (the flat copy's 3-7%), more of a stronger model's. In fp32 the first
#    criterion implies this one.
#
# On a GPU both copies run in bf16, the checkpoints' dtype (NeMo's importer keeps Qwen3's: nemo/collections/llm/gpt/
# model/qwen3.py:296-298), Transformer Engine's kernels against Hugging Face's, as the model will be used. An fp32
# comparison there would need a bound of its own for TE, cuBLAS and possibly TF32 over 36 layers, which no CPU can
# measure; the bf16 bounds above are derived from measurements.
FP32_MAX_ABS_DIFF = 1e-3
HALF_PRECISION_MAX_KL = 5e-2
DECISIVE_MARGIN = 0.8  # standard deviations of the reference's logits at the position
MIN_TOKENS = 512  # positions the check runs on (SAMPLE_TEXT gives ~700 with the series' tokenizers)
_CHUNK = 128  # positions judged at a time: full-vocabulary float32 intermediates stay ~100 MB each


@dataclass(frozen=True)
class LogitsCheck:
    """How closely two copies of one model agree on the next-token logits of the same tokens."""

    max_abs_diff: float
    mean_abs_diff: float
    mean_kl: float  # KL(reference || candidate) of the next-token distributions, nats per position
    min_cosine: float  # of the logit vectors, per position (reported: a shared component keeps it near 1)
    top1_agreement: float  # at every position (reported: near ties flip under rounding)
    decisive_positions: int  # where the reference's top-1 leads by more than DECISIVE_MARGIN standard deviations
    decisive_flips: int  # of those, where the candidate's top-1 token differs
    dtype: str
    tokens: int

    @property
    def close(self) -> bool:
        if self.dtype == "float32":
            return self.max_abs_diff <= FP32_MAX_ABS_DIFF
        return self.mean_kl <= HALF_PRECISION_MAX_KL

    @property
    def passed(self) -> bool:
        return self.close and self.decisive_flips == 0

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        criterion = (
            f"max |difference| <= {FP32_MAX_ABS_DIFF:g}"
            if self.dtype == "float32"
            else f"mean KL <= {HALF_PRECISION_MAX_KL:g}"
        )
        return f"{verdict} ({self.dtype}: {criterion}, same top-1 token wherever the reference's leads by > {DECISIVE_MARGIN:g} sd): {self.numbers()}"

    def numbers(self) -> str:
        """What was measured, without a verdict (for comparisons that have no criterion to pass)."""
        return (
            f"max |difference| {self.max_abs_diff:.2e}, mean {self.mean_abs_diff:.2e}, mean KL {self.mean_kl:.2e}, "
            f"min cosine {self.min_cosine:.5f}, same top-1 token at {self.decisive_positions - self.decisive_flips} of "
            f"{self.decisive_positions} decisive positions and at {self.top1_agreement:.1%} of all {self.tokens}"
        )


def _per_position(candidate: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
    """The measures of logits [positions, vocabulary], one value per position."""
    difference = (candidate - reference).abs()
    log_p, log_q = torch.log_softmax(reference, -1), torch.log_softmax(candidate, -1)
    top2 = reference.topk(2, -1).values
    return {
        "max_abs_diff": difference.amax(-1),
        "mean_abs_diff": difference.mean(-1),
        "kl": (log_p.exp() * (log_p - log_q)).sum(-1),
        "cosine": torch.nn.functional.cosine_similarity(candidate, reference, dim=-1),
        "same_top1": candidate.argmax(-1) == reference.argmax(-1),
        "decisive": top2[:, 0] - top2[:, 1] > DECISIVE_MARGIN * reference.std(-1),
    }


def judge(candidate: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> LogitsCheck:
    """Compare next-token logits [batch, sequence, vocabulary] of a converted model with the original's."""
    chunks = zip(candidate.flatten(0, 1).split(_CHUNK), reference.flatten(0, 1).split(_CHUNK))
    parts = [_per_position(c.float(), r.float()) for c, r in chunks]
    m = {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
    return LogitsCheck(
        max_abs_diff=m["max_abs_diff"].max().item(),
        mean_abs_diff=m["mean_abs_diff"].mean().item(),
        mean_kl=m["kl"].mean().item(),
        min_cosine=m["cosine"].min().item(),
        top1_agreement=m["same_top1"].float().mean().item(),
        decisive_positions=int(m["decisive"].sum()),
        decisive_flips=int((m["decisive"] & ~m["same_top1"]).sum()),
        dtype=str(dtype).removeprefix("torch."),
        tokens=len(m["kl"]),
    )


def sample_token_ids(tokenizer_dir: Path) -> torch.Tensor:
    """SAMPLE_TEXT tokenized by the model's own tokenizer, as a batch of one: at least MIN_TOKENS positions."""
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(tokenizer_dir)(SAMPLE_TEXT)["input_ids"]
    if len(ids) < MIN_TOKENS:
        raise refuse(
            "tokenizer",
            f"the tokenizer in {tokenizer_dir} makes {len(ids)} tokens of the logits check's text; "
            f"the check needs {MIN_TOKENS}",
            "lengthen SAMPLE_TEXT in helpers/conversion/sample_text.py",
        )
    return torch.tensor([ids])


def compare_logits(checkpoint: Path, hf_dir: Path, token_ids: torch.Tensor) -> LogitsCheck:
    """Next-token logits of the NeMo checkpoint against the Hugging Face one, on the same tokens."""
    with hf_model.loaded(hf_dir) as reference_model, torch.no_grad():
        dtype = reference_model.dtype
        reference = reference_model(token_ids.to(reference_model.device)).logits.float().cpu()
    with nemo_model.loaded(checkpoint) as module:
        candidate = nemo_model.logits(module, token_ids)[..., : reference.shape[-1]]
    return judge(candidate, reference, dtype)
