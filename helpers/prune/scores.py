"""The score an architecture search maximizes, for a model being searched and for any pruned checkpoint.

    torchrun --nproc_per_node 2 -m helpers.prune.scores --pp_size 2 --hf_model_name_or_path A B C \\
        --prune_score_func val_loss --score_data_path wikitext-validation_text_document --score_num_samples 16 \\
        --seq_length 256 --report scores.json

Two score functions, named as `--prune_score_func` names them:
- `mmlu_<N>pct`: MMLU accuracy on N% of each subject, zero-shot, by ModelOpt's Megatron MMLU helper (what ModelOpt's
  pruning guide and prune_minitron.py score with; it reads MMLU from the Hugging Face Hub, so it is for GPU machines);
- `val_loss`: minus the mean next-token loss on the first `--score_num_samples` windows of held-out data (the
  validation split notebook 01 wrote), which needs nothing but our data: what a machine without the Hub scores with.
The search scores candidates with `score_function`; this command scores whole checkpoints with the same function
(built as the search builds its model, through the same pipeline stages), so the hand-picked students can be placed
among the searched candidates.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from helpers.data.indexed import token_windows
from helpers.data.prefixes import missing_datasets
from helpers.errors import refuse
from helpers.prune import search
from helpers.run import entry_point
from helpers.run.launch import is_rank0


def score_function(name: str, loaded, *, hf_dir: Path, data_path: Path | None, num_samples: int, seq_length: int, mbs: int) -> Callable[[torch.nn.Module], float]:
    """`name`'s score of the model `loaded` holds (whatever architecture ModelOpt has made active in it), the same
    on every rank. Collective."""
    from helpers.conversion import bridge as conversion

    mmlu = search.MMLU.fullmatch(name)
    if mmlu:
        from modelopt.torch.utils.plugins.megatron_mmlu import megatron_mmlu
        from transformers import AutoTokenizer

        tokenizer, fraction = AutoTokenizer.from_pretrained(hf_dir), int(mmlu.group(1)) / 100
        # ModelOpt 0.44 (the GPU containers') calls the share `fraction`; 0.43 (the CPU rehearsal's) `percentage`
        share = "fraction" if "fraction" in inspect.signature(megatron_mmlu).parameters else "percentage"
        return lambda model: megatron_mmlu(model, tokenizer, few_shots=0, **{share: fraction})
    if name != search.VAL_LOSS:
        raise refuse("--prune_score_func", f"{name!r} is no score function", "give mmlu_<N>pct or val_loss")
    windows = torch.from_numpy(token_windows(data_path, seq_length, num_samples))

    def minus_val_loss(_model) -> float:
        from megatron.core import parallel_state

        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, len(windows), mbs):
            batch = windows[start : start + mbs]
            logits = conversion.run_stages(loaded, batch)
            if logits is not None:  # the last stage
                loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), batch[:, 1:], reduction="none")
                total += loss.double().mean(-1).sum()
        torch.distributed.broadcast(total, src=parallel_state.get_pipeline_model_parallel_last_rank())
        return -(total / len(windows)).item()

    return minus_val_loss


def require_score_data(data_path) -> None:
    """Refuse `val_loss` without the held-out data it reads (.bin and .idx), before any model is loaded."""
    if not data_path or missing_datasets([str(data_path)]):
        raise refuse("--score_data_path", f"{data_path}.bin / .idx not found", "give the validation split's prefix written by notebook 01")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.prune.scores", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf_model_name_or_path", nargs="+", required=True, help="Hugging Face checkpoint folders to score")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline parallel size (= processes)")
    p.add_argument("--prune_score_func", required=True, help="mmlu_<N>pct or val_loss")
    p.add_argument("--score_data_path", type=Path, help="val_loss: the held-out data's prefix (.bin/.idx)")
    p.add_argument("--score_num_samples", type=int, default=16, help="val_loss: windows scored")
    p.add_argument("--seq_length", type=int, default=4096, help="val_loss: tokens per window")
    p.add_argument("--mbs", type=int, default=1, help="val_loss: windows per forward pass")
    p.add_argument("--report", type=Path, required=True, help="JSON file of {checkpoint: score}")
    return p


def score(args: argparse.Namespace) -> dict[str, float]:
    """Each checkpoint's score, built one after the other in the same processes."""
    from helpers.conversion import bridge as conversion

    scores = {}
    for path in args.hf_model_name_or_path:
        loaded = conversion.load(Path(path), args.pp_size)
        function = score_function(args.prune_score_func, loaded, hf_dir=Path(path), data_path=args.score_data_path, num_samples=args.score_num_samples, seq_length=args.seq_length, mbs=args.mbs)
        scores[str(path)] = function(loaded.module)
        if is_rank0():
            print(f"{args.prune_score_func} score {scores[str(path)]:.5f}: {path}", flush=True)
        del loaded
    return scores


def launched(args: argparse.Namespace) -> None:
    """One process a pipeline stage, and val_loss's held-out data."""
    from helpers.conversion import bridge as conversion

    conversion.require_launched(args.pp_size)
    if args.prune_score_func == search.VAL_LOSS:
        require_score_data(args.score_data_path)


def run(args: argparse.Namespace, _: None) -> int:
    """Score every checkpoint; rank 0 writes the report."""
    from helpers.conversion import bridge as conversion
    from helpers.run.outputs import atomic_output

    scores = score(args)
    if is_rank0():
        with atomic_output(args.report) as partial:
            partial.write_text(json.dumps({"score_func": args.prune_score_func, "scores": scores}, indent=1))
    conversion.stop_distributed()
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, run)


if __name__ == "__main__":
    sys.exit(main())
