"""Notebook 02: prune the teacher into a depth and a width student with ModelOpt's Minitron method.

    torchrun --nproc_per_node 2 -m helpers.prune ...   the entry point (`cli`), with NeMo's gpt_prune.py flags
    checks.py       the rules every setting must pass before the model is loaded
    steps.py        what the notebook runs: the commands a profile implies, checked, then launched
    importance.py   Minitron's importance scores, recorded during pruning and read back
    resave.py       re-saving a pruned checkpoint so that every later step loads it normally
"""

from helpers.prune.cli import check, parser
from helpers.prune.steps import command, flags, run_pruning, targets

__all__ = ["check", "command", "flags", "parser", "run_pruning", "targets"]
