"""A Hugging Face causal LM loaded for measuring: its own dtype, eval mode, the GPU if there is one, freed afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def loaded(path: Path) -> Iterator[torch.nn.Module]:
    """A Hugging Face causal LM in its own dtype, in eval mode, on the GPU if there is one; freed afterwards."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype="auto").to(device()).eval()
    try:
        yield model
    finally:
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total parameters and those outside the embedding and output layers."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    output = 0 if model.config.tie_word_embeddings else model.get_output_embeddings().weight.numel()
    return {"parameters": total, "non-embedding parameters": total - embedding - output}
