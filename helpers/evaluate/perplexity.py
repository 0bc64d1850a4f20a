"""Scores of a Hugging Face checkpoint on token windows: next-token loss and perplexity, KL divergence from a
teacher, a greedy generation; and the difference of two models' losses on the same windows, with its standard error."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.models.hf_model import device, load, loaded, parameters


def window_scores(model: torch.nn.Module, windows: np.ndarray, batch_size: int, teacher: torch.nn.Module | None = None) -> dict[str, np.ndarray]:
    """Per window of `windows` [count, length]: "loss", the mean next-token cross-entropy, and, given a `teacher`,
    "KL to teacher", the mean KL divergence from the teacher's next-token distribution to the model's: what
    distillation minimises, on text neither was trained on."""
    scores: dict[str, list[float]] = {"loss": []} | ({"KL to teacher": []} if teacher is not None else {})
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            ids = torch.from_numpy(windows[start : start + batch_size]).to(device())
            logits = model(ids).logits[:, :-1].float()
            per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            scores["loss"] += per_token.double().mean(-1).tolist()
            if teacher is not None:
                reference = teacher(ids).logits[:, :-1]
                scores["KL to teacher"] += [_kl(t, s) for t, s in zip(reference, logits)]  # a window at a time: less memory
    return {name: np.array(values) for name, values in scores.items()}


def _kl(teacher_logits: torch.Tensor, logits: torch.Tensor) -> float:
    log_p, log_q = torch.log_softmax(teacher_logits.float(), -1), torch.log_softmax(logits, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).double().mean().item()


def window_losses(model: torch.nn.Module, windows: np.ndarray, batch_size: int) -> np.ndarray:
    """Mean next-token cross-entropy of each of `windows` [count, length]."""
    return window_scores(model, windows, batch_size)["loss"]


def test_loss(model: torch.nn.Module, windows: np.ndarray, batch_size: int) -> float:
    """Mean next-token cross-entropy over `windows` (all of one length): perplexity is exp of it."""
    return float(window_losses(model, windows, batch_size).mean())


NOISE = 2  # standard errors of a paired difference: a difference within this is not one


@dataclass(frozen=True)
class Difference:
    """How much higher one model's loss is than another's on the same windows, and how sure that is."""

    nats: float  # mean over the windows of loss(a) - loss(b)
    standard_error: float  # of that mean, from the spread of the per-window differences

    def exceeds(self, standard_errors: float) -> bool:
        """The difference is positive by more than `standard_errors` of its standard error."""
        return self.nats > standard_errors * self.standard_error

    @property
    def significant(self) -> bool:
        """Beyond NOISE standard errors, in either direction."""
        return abs(self.nats) > NOISE * self.standard_error

    def __str__(self) -> str:
        return f"{self.nats:+.4f} ± {self.standard_error:.4f} nats"

    def verdict(self) -> str:
        """The difference, and whether it is one."""
        return str(self) if self.significant else f"{self} (within the noise of these windows: ±{NOISE * self.standard_error:.4f})"


def difference(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> Difference:
    """loss(a) - loss(b), paired window by window: both models read the same text, so what one window makes
    harder for both cancels, and the spread left is the noise of comparing them on this many windows. Windows,
    not tokens, are the samples: neighbouring tokens' losses are correlated."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return Difference(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))))


def greedy_generation(model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """The model's greedy continuation of `prompt`."""
    ids = tokenizer(prompt, return_tensors="pt").to(device())
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def evaluate(path: Path, windows: np.ndarray, tokenizer, *, batch_size: int, prompt: str, max_new_tokens: int, teacher: torch.nn.Module | None = None, load: Callable[[Path], torch.nn.Module] = load) -> dict:
    """Size, test loss and perplexity (per window too), the KL divergence from the `teacher` if given, and a greedy
    generation of `max_new_tokens` (none if 0) of one model, as `load` makes it (an FP8 checkpoint:
    `helpers.quantize.reload.load_fp8`; speed: `helpers.evaluate.speed`, all models together)."""
    with loaded(path, load) as model:
        scores = window_scores(model, windows, batch_size, teacher)
        loss = float(scores["loss"].mean())
        kl = {"KL to teacher": round(float(scores["KL to teacher"].mean()), 5)} if teacher is not None else {}
        return {
            **parameters(model),
            "test loss": round(loss, 4),
            "test perplexity": round(math.exp(loss), 2),
            **kl,
            **({"generation": greedy_generation(model, tokenizer, prompt, max_new_tokens)} if max_new_tokens else {}),
            "per window": {name: values.round(5).tolist() for name, values in scores.items()},
        }
