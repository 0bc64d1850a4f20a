"""Notebook 02: prune the teacher into a depth and a width student with ModelOpt's Minitron method.

    torchrun --nproc_per_node 2 -m helpers.prune ...         NeMo 2's route (`cli`), with NeMo's gpt_prune.py flags
    torchrun --nproc_per_node 2 -m helpers.prune.bridge ...  Megatron-Bridge's route, with the flags of ModelOpt's
                                                             examples/megatron_bridge/prune_minitron.py
    checks.py         the rules every setting must pass before the model is loaded (both routes)
    steps.py          what the notebook runs on NeMo 2's route: the commands a profile implies, checked, then launched
    bridge_steps.py   the same on Megatron-Bridge's route
    importance.py     Minitron's importance scores, recorded during pruning and read back
    resave.py         re-saving a pruned NeMo 2 checkpoint so that every later step loads it normally

The notebook calls the functions below with its workspace, whose route picks the steps module. Names are imported
when first used, not with the package: `python -m helpers.prune.resave` imports this package before running its
module, and a package that had already imported it (through `cli`) would have Python run a second copy of the
module and warn ("found in sys.modules after import of package", runpy.py:121-128).
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["check", "command", "parser", "refusal", "run_pruning", "steps_for", "students", "targets"]
_MODULES = {"check": "cli", "parser": "cli", "targets": "steps"}
_ROUTE_STEPS = {"nemo2": "steps", "bridge": "bridge_steps"}


def steps_for(ws):
    """The steps module of the workspace's route."""
    return import_module(f"{__name__}.{_ROUTE_STEPS[ws.route]}")


def run_pruning(profile, ws, kind: str, overwrite: bool = False):
    """Check the settings, then prune with torchrun; reuse a finished student unless `overwrite`. Returns its path."""
    from helpers.launch import run

    steps = steps_for(ws)
    path = steps.output(ws, kind)
    if not overwrite and steps.is_done(path, profile, kind):
        print(f"Reusing the {kind}-pruned student at {path} (set OVERWRITE = True to prune again).")
        return path
    replace = overwrite or path.exists()  # a stale or differently-pruned student is replaced
    steps.check_flags(profile, ws, kind, replace)  # refuses before launching
    run(steps.command(profile, ws, kind, replace), ws.logs / f"02-prune-{kind}.log")
    return path


def command(profile, ws, kind: str, overwrite: bool = False) -> list[str]:
    """The torchrun command that makes the `kind` student ("depth", "width", or "drop": named layers)."""
    return steps_for(ws).command(profile, ws, kind, overwrite)


def refusal(profile, ws, kind: str) -> str | None:
    """What the entry point would say, before loading anything, to the `kind` student's flags under `profile`."""
    from helpers.errors import refusal

    return refusal(lambda: steps_for(ws).check_flags(profile, ws, kind))


def students(ws, overwrite: bool = False) -> dict:
    """Each pruned student as a Hugging Face checkpoint, proven by logits: {label: LogitsCheck}."""
    return steps_for(ws).students(ws, overwrite)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
