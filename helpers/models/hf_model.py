"""A Hugging Face causal LM loaded for measuring: its own dtype, eval mode, the GPU if there is one, freed afterwards."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(path: Path) -> torch.nn.Module:
    """A Hugging Face causal LM in its own dtype, in eval mode, on the GPU if there is one."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, torch_dtype="auto").to(device()).eval()


@contextmanager
def loaded(path: Path, load: Callable[[Path], torch.nn.Module] = load) -> Iterator[torch.nn.Module]:
    """The model at `path` as `load` makes it (by default `load` above: a Hugging Face causal LM), freed afterwards."""
    model = load(path)
    try:
        yield model
    finally:
        del model
        free_device_memory()


def free_device_memory() -> None:
    """Hand the GPU memory PyTorch cached for freed tensors back to the driver, so that the processes a notebook
    launches next (a torchrun, MMLU's accelerate) find the devices empty. What stays is the CUDA context itself,
    ~0.5 GB on the one GPU this process used, until the process (the kernel) ends."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total parameters and those outside the embedding and output layers."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    output = 0 if model.config.tie_word_embeddings else model.get_output_embeddings().weight.numel()
    return {"parameters": total, "non-embedding parameters": total - embedding - output}
