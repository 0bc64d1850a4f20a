"""Load a NeMo 2 checkpoint into this process and run it forward: for checks, not for training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from helpers.models import hf_model
from helpers.run.stack import nemo_llm


@contextmanager
def loaded(path: Path) -> Iterator[torch.nn.Module]:
    """The Megatron-Core GPT model of the checkpoint at `path`, in eval mode, on the GPU if there is one.

    It loads the way `llm.export_ckpt` does (a one-device trainer restores the weights), so a
    checkpoint that loads here also exports.
    """
    nemo_llm()
    from nemo.lightning import io

    connector = io.load_context(str(path), subpath="model").exporter("hf", str(path))
    lightning_model, _trainer = connector.nemo_load(path)
    module = lightning_model.module.eval()
    if torch.cuda.is_available():
        module.cuda()
    try:
        yield module
    finally:
        del lightning_model, module, _trainer
        hf_model.free_device_memory()


def logits(module: torch.nn.Module, token_ids: torch.Tensor) -> torch.Tensor:
    """Next-token logits [batch, sequence, vocabulary] for `token_ids` [batch, sequence], as float32 on the CPU."""
    device = next(module.parameters()).device
    token_ids = token_ids.to(device)
    positions = torch.arange(token_ids.shape[1], device=device).expand_as(token_ids)
    with torch.no_grad():
        return module(token_ids, positions, attention_mask=None).float().cpu()


def next_token_loss(logits_: torch.Tensor, token_ids: torch.Tensor) -> float:
    """Mean cross-entropy of predicting each token from the ones before it."""
    return torch.nn.functional.cross_entropy(logits_[:, :-1].flatten(0, 1), token_ids[:, 1:].flatten().cpu()).item()
