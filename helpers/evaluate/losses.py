"""The next-token loss of several Hugging Face checkpoints on the same tokens, as a command:

    python -m helpers.evaluate.losses --checkpoint teacher=DIR --checkpoint depth-pruned=DIR \\
        --data_prefix wikitext-validation_text_document --seq_length 4096 --windows 8 --report losses.json

Notebook 02 scores the teacher and the pruned students' exports with it (each export was checked to
give its NeMo checkpoint's logits). It runs as its own process so that the GPU memory it takes is
given back before notebook 03 trains, and it starts in seconds: it needs torch and transformers only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.evaluate.losses", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=DIR", help="a Hugging Face checkpoint to score (repeatable)")
    p.add_argument("--data_prefix", required=True, type=Path, help="tokenized split to read the windows from")
    p.add_argument("--seq_length", type=int, required=True)
    p.add_argument("--windows", type=int, default=8, help="number of sequences")
    p.add_argument("--batch_size", type=int, default=1, help="sequences per forward pass (full-vocabulary logits are large)")
    p.add_argument("--report", required=True, type=Path, help="where to write the losses as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    from helpers.models.checkpoints import is_hf_checkpoint

    args = parser().parse_args(argv)
    try:
        named = dict(item.split("=", 1) for item in args.checkpoint)
    except ValueError:
        print(f"helpers.evaluate.losses refused to start:\n--checkpoint: give LABEL=DIR, not {args.checkpoint}", file=sys.stderr)
        return 2
    missing = [f"--checkpoint: {label}={path} is not a Hugging Face checkpoint" for label, path in named.items() if not is_hf_checkpoint(Path(path))]
    if missing:
        print("helpers.evaluate.losses refused to start:\n" + "\n".join(missing), file=sys.stderr)
        return 2

    from helpers.data.indexed import token_windows
    from helpers.evaluate.perplexity import window_losses
    from helpers.models.hf_model import loaded

    windows = token_windows(args.data_prefix, args.seq_length, args.windows)
    losses, per_window = {}, {}
    for label, path in named.items():
        with loaded(Path(path)) as model:
            scores = window_losses(model, windows, args.batch_size)
        losses[label], per_window[label] = float(scores.mean()), scores.round(5).tolist()
        print(f"{label}: next-token loss {losses[label]:.4f} on {windows.size} tokens", flush=True)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    report = {"tokens": int(windows.size), "data": str(args.data_prefix), "loss": losses, "loss per window": per_window}
    args.report.write_text(json.dumps(report, indent=2))
    return 0


def command(checkpoints: dict[str, Path], data_prefix: Path, seq_length: int, windows: int, report: Path) -> list[str]:
    """`python -m helpers.evaluate.losses ...`: the loss of each labelled checkpoint on the same tokens, as a command."""
    from helpers.run.launch import python_module

    pairs = [arg for label, path in checkpoints.items() for arg in ("--checkpoint", f"{label}={path}")]
    return python_module("helpers.evaluate.losses", *pairs, "--data_prefix", data_prefix, "--seq_length", seq_length, "--windows", windows, "--report", report)


def costs(report: Path, reference: str = "teacher") -> str:
    """How much higher each model's loss is than the `reference`'s in a report of the command, judged against the
    noise of comparing them on the same windows (`perplexity.difference`)."""
    from helpers.evaluate.perplexity import difference

    written = json.loads(report.read_text())
    per_window, windows = written["loss per window"], len(written["loss per window"][reference])
    lines = [f"Loss over {reference}'s, on the same {written['tokens']:,} tokens ({windows} windows):"]
    lines += [f"  {label}: {difference(values, per_window[reference]).verdict()}" for label, values in per_window.items() if label != reference]
    return "\n".join(lines)


def measure(checkpoints: dict[str, Path], data_prefix: Path, seq_length: int, windows: int, report: Path, log: Path) -> dict[str, float]:
    """Run the command, streamed (raising with the log's tail if it fails); return the losses."""
    from helpers.run.launch import run

    report.unlink(missing_ok=True)
    run(command(checkpoints, data_prefix, seq_length, windows, report), log)
    return json.loads(report.read_text())["loss"]


if __name__ == "__main__":
    sys.exit(main())
