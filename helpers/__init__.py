"""Helpers of the Qwen3 pruning and distillation series: every step the notebooks run, and its checks."""

import warnings
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent  # the clone: the notebooks, and what a Slurm job mounts

# Notices about the environment, not about the work: the CPU rehearsal has no Transformer Engine or
# Apex, and this torch build still imports the old pynvml package.
for _notice in ("The pynvml package is deprecated", "Transformer Engine and Apex are not installed", "Apex is not installed"):
    warnings.filterwarnings("ignore", message=_notice)
