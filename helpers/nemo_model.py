"""Load a NeMo 2 checkpoint into this process and run it forward: for checks, not for training.

As a command, it measures the next-token loss of several checkpoints on the same tokens:

    python -m helpers.nemo_model --checkpoint teacher=DIR --checkpoint pruned=DIR \
        --data_prefix wikitext-validation_text_document --seq_length 4096 --windows 8 --report losses.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from helpers.stack import nemo_llm


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
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.nemo_model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=DIR", help="a NeMo 2 checkpoint to measure (repeatable)")
    p.add_argument("--data_prefix", required=True, type=Path, help="tokenized split to read the windows from")
    p.add_argument("--seq_length", type=int, required=True)
    p.add_argument("--windows", type=int, default=8, help="number of sequences")
    p.add_argument("--report", required=True, type=Path, help="where to write the losses as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    from helpers.checkpoints import require_nemo_checkpoint
    from helpers.data.indexed import token_windows
    from helpers.errors import SettingError

    args = parser().parse_args(argv)
    try:
        named = dict(item.split("=", 1) for item in args.checkpoint)
        for path in named.values():
            require_nemo_checkpoint(Path(path), "--checkpoint")
    except (SettingError, ValueError) as error:
        print(f"helpers.nemo_model refused to start:\n{error}", file=sys.stderr)
        return 2
    tokens = torch.from_numpy(token_windows(args.data_prefix, args.seq_length, args.windows))
    losses = {}
    for label, path in named.items():
        with loaded(Path(path)) as module:  # one window at a time: full-vocabulary logits are large
            losses[label] = sum(next_token_loss(logits(module, w[None]), w[None]) for w in tokens) / len(tokens)
        print(f"{label}: next-token loss {losses[label]:.4f} on {tokens.numel()} tokens")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"tokens": tokens.numel(), "data": str(args.data_prefix), "loss": losses}, indent=2))
    return 0


def command(checkpoints: dict[str, Path], data_prefix: Path, seq_length: int, windows: int, report: Path) -> list[str]:
    """`python -m helpers.nemo_model ...`: the loss of each labelled checkpoint on the same tokens, as a command."""
    from helpers.launch import python_module

    pairs = [arg for label, path in checkpoints.items() for arg in ("--checkpoint", f"{label}={path}")]
    return python_module("helpers.nemo_model", *pairs, "--data_prefix", data_prefix, "--seq_length", seq_length, "--windows", windows, "--report", report)


def measure_losses(checkpoints: dict[str, Path], data_prefix: Path, seq_length: int, windows: int, report: Path, log: Path) -> dict[str, float]:
    """Run this module as a command (NeMo's trainer refuses to start in a notebook kernel); return the losses."""
    from helpers.launch import run

    report.unlink(missing_ok=True)
    run(command(checkpoints, data_prefix, seq_length, windows, report), log)
    return json.loads(report.read_text())["loss"]


if __name__ == "__main__":
    sys.exit(main())
