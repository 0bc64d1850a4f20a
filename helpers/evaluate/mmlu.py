"""MMLU (5-shot) with lm-evaluation-harness, as the reference tutorial measured it.

The NeMo container ships lm-evaluation-harness as NVIDIA's `nvidia-lm-eval` package (module
`lm_eval`); installing the upstream `lm-eval` over it is what broke users' containers, so the
installed one is used. It reads Hugging Face checkpoints and downloads MMLU from the Hub.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

from helpers.run.launch import run

TASK = "mmlu"
NUM_FEWSHOT = 5
COLUMN = "MMLU (5-shot)"


def command(model_dir: Path, output_dir: Path, devices: int = 1, batch_size: int = 4) -> list[str]:
    """The lm-eval command for one model; data parallel over `devices` GPUs through accelerate."""
    evaluation = [
        "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=bfloat16",
        "--tasks", TASK, "--num_fewshot", str(NUM_FEWSHOT), "--batch_size", str(batch_size),
        "--output_path", str(output_dir),
    ]  # fmt: skip
    if devices > 1:
        return ["accelerate", "launch", "--multi_gpu", "--num_processes", str(devices), *evaluation]
    return [sys.executable, *evaluation]


def gpus() -> int:
    """GPUs to spread the evaluation over: all visible ones (at least one process)."""
    import torch

    return max(1, torch.cuda.device_count())


def unavailable_reason() -> str | None:
    """Why MMLU cannot run here, or None if it can."""
    import torch

    if not torch.cuda.is_available():
        return "there is no GPU (a 5-shot pass over MMLU's 14,042 questions is hours of CPU time per model)"
    if importlib.util.find_spec("lm_eval") is None:
        return "lm_eval is not installed (the NeMo container has it as nvidia-lm-eval)"
    return None


def accuracy(output_dir: Path) -> float:
    """MMLU accuracy from the newest results file lm-eval wrote under `output_dir`."""
    results = sorted(output_dir.rglob("results*.json"), key=lambda p: p.stat().st_mtime)
    if not results:
        raise FileNotFoundError(f"no lm-eval results under {output_dir}")
    return json.loads(results[-1].read_text())["results"][TASK]["acc,none"]


def evaluate(model_dir: Path, output_dir: Path, log: Path, devices: int = 1) -> float:
    """Run MMLU for one model (streamed, raising if it fails) and return its accuracy."""
    run(command(model_dir, output_dir, devices), log)
    return accuracy(output_dir)


def evaluate_all(models: dict[str, Path], ws, enabled: bool = True) -> dict[str, float] | None:
    """Run MMLU for each labelled model where it can run here (`enabled`: the profile's choice) and return the
    accuracies; elsewhere say why, print the commands, and return None."""
    import pandas as pd

    reason = unavailable_reason() if enabled else "this profile does not run MMLU"
    if reason:
        print(f"MMLU skipped: {reason}. The commands:")
        for label, path in models.items():
            print(shlex.join(command(path, ws.results / "mmlu" / label, devices=gpus())))
        return None
    scores = {label: evaluate(path, ws.results / "mmlu" / label, ws.logs / f"04-mmlu-{label}.log", devices=gpus()) for label, path in models.items()}
    print(pd.Series(scores, name=COLUMN))
    return scores
