"""Notebook 02: prune the teacher into a depth and a width student with ModelOpt's Minitron method.

    torchrun --nproc_per_node 2 -m helpers.prune ...   the entry point (`cli`), with NeMo's gpt_prune.py flags
    checks.py       the rules every setting must pass before the model is loaded
    steps.py        what the notebook runs: the commands a profile implies, checked, then launched
    importance.py   Minitron's importance scores, recorded during pruning and read back
    resave.py       re-saving a pruned checkpoint so that every later step loads it normally

The names below are imported when first used, not with the package: `python -m helpers.prune.resave` imports
this package before running its module, and a package that had already imported it (through `cli`) would have
Python run a second copy of the module and warn ("found in sys.modules after import of package", runpy.py:121-128).
"""

from importlib import import_module

__all__ = ["check", "command", "flags", "parser", "run_pruning", "targets"]
_MODULES = {"check": "cli", "parser": "cli", "command": "steps", "flags": "steps", "run_pruning": "steps", "targets": "steps"}


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
