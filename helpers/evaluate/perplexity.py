"""Notebook 04's measurements on Hugging Face checkpoints: the same tokens and settings for every model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from helpers.hf_model import device, loaded, parameters


def test_loss(model: torch.nn.Module, windows: np.ndarray, batch_size: int) -> float:
    """Mean next-token cross-entropy over `windows` [count, length]: perplexity is exp of it."""
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            ids = torch.from_numpy(windows[start : start + batch_size]).to(device())
            logits = model(ids).logits[:, :-1].float()
            total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="sum").item()
            count += ids[:, 1:].numel()
    return total / count


def greedy_generation(model: torch.nn.Module, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """The model's greedy continuation of `prompt`."""
    ids = tokenizer(prompt, return_tensors="pt").to(device())
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def evaluate(path: Path, windows: np.ndarray, tokenizer, *, batch_size: int, prompt: str, max_new_tokens: int) -> dict:
    """Size, test loss and perplexity, and a greedy generation of one model (speed: `helpers.evaluate.speed`, all models together)."""
    with loaded(path) as model:
        loss = test_loss(model, windows, batch_size)
        return {
            **parameters(model),
            "test loss": round(loss, 4),
            "test perplexity": round(math.exp(loss), 2),
            "generation": greedy_generation(model, tokenizer, prompt, max_new_tokens),
        }
