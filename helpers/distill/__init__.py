"""Notebook 03: distill each pruned student from the teacher's logits, and read the runs back.

    torchrun --nproc_per_node 2 -m helpers.distill ...   the entry point (`cli`), with NeMo's gpt_train.py flags
    checks.py       the rules every setting must pass before a model is loaded
    steps.py        what the notebook runs: the commands a profile implies, launched with live curves, read back
    budget.py       steps, memory and time a distillation needs, before it runs
    runs.py         a run's checkpoints on disk: its state, resuming, the best one
    callbacks.py    the training callbacks the entry point adds to NeMo's trainer
    live.py         loss curves drawn from the streamed log lines while training runs
"""

from helpers.distill.cli import check, parser
from helpers.distill.steps import (
    command,
    curves,
    flags,
    memory_estimates,
    memory_measured,
    run_dir,
    run_distillation,
    run_name,
    step_seconds,
    summary,
)

__all__ = [
    "check", "command", "curves", "flags", "memory_estimates", "memory_measured", "parser", "run_dir", "run_distillation",
    "run_name", "step_seconds", "summary",
]  # fmt: skip
