"""Notebook 03: distill each pruned student from the teacher's logits, and read the runs back.

    torchrun --nproc_per_node 2 -m helpers.distill ...   the entry point (`cli`), with NeMo's gpt_train.py flags
    checks.py       the rules every setting must pass before a model is loaded
    steps.py        what the notebook runs: the commands a profile implies, launched with live curves, read back
    budget.py       steps, memory and time a distillation needs, before it runs
    nodes.py        more than one node: the plan across nodes, the command each node runs, a Slurm script, and
                    what the entry point checks on every node (`python -m helpers.distill.nodes` plans one)
    runs.py         a run's checkpoints on disk: its state, resuming, the best one
    callbacks.py    the training callbacks the entry point adds to NeMo's trainer
    live.py         loss curves drawn from the streamed log lines while training runs

The names below are imported when first used, not with the package: `python -m helpers.distill.nodes` imports
this package before running its module, and a package that had already imported it (through `cli`) would have
Python run a second copy of the module and warn ("found in sys.modules after import of package", runpy.py:121-128).
"""

from importlib import import_module

_MODULES = {
    "check": "cli", "parser": "cli", "command": "steps", "curves": "steps", "flags": "steps", "memory_estimates": "steps",
    "memory_measured": "steps", "multi_node_plans": "steps", "run_dir": "steps", "run_distillation": "steps",
    "run_name": "steps", "slurm_script": "steps", "step_seconds": "steps", "summary": "steps", "write_slurm_scripts": "steps",
}  # fmt: skip
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
