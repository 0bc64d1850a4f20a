"""Notebook 03: distill each pruned student from the teacher's logits, and read the runs back.

    torchrun --nproc_per_node 2 -m helpers.distill ...         NeMo 2's route (`cli`), with NeMo's gpt_train.py flags
    torchrun --nproc_per_node 2 -m helpers.distill.bridge ...  Megatron-Bridge's route, with the flags of ModelOpt's
                                                               examples/megatron_bridge/distill.py
    checks.py         the rules every setting must pass before a model is loaded
    steps.py          what the notebook runs on NeMo 2's route: the commands a profile implies, launched with live
                      curves, read back
    bridge_steps.py   the same on Megatron-Bridge's route
    budget.py         steps, memory and time a distillation needs, before it runs
    nodes.py          more than one node: the plan across nodes, the command each node runs, a Slurm script, and
                      what the entry point checks on every node (`python -m helpers.distill.nodes` plans one)
    runs.py           a run's checkpoints on disk: its state, resuming, the best one
    callbacks.py      the training callbacks the entry point adds to NeMo's trainer
    live.py           loss curves drawn from the streamed log lines while training runs

The notebook calls the functions below with its workspace, whose route picks the steps module. Names are imported
when first used, not with the package: `python -m helpers.distill.nodes` imports this package before running its
module, and a package that had already imported it (through `cli`) would have Python run a second copy of the
module and warn ("found in sys.modules after import of package", runpy.py:121-128).
"""

from __future__ import annotations

from importlib import import_module

# Route-independent estimates and plans, and the NeMo 2 route's entry point (what its dry run and tests call).
_MODULES = {
    "memory_estimates": "steps", "multi_node_plans": "steps", "check": "cli", "parser": "cli", "command": "steps",
    "flags": "steps", "run_name": "steps", "slurm_script": "steps",
}  # fmt: skip
# Route-dependent: each route's steps module has these, with the same signatures (the workspace comes first or second).
_ROUTED = (
    "best", "check_flags", "curves", "export_students", "memory_measured", "run_dir", "run_distillation",
    "step_seconds", "summary", "write_slurm_scripts",
)  # fmt: skip
_ROUTE_STEPS = {"nemo2": "steps", "bridge": "bridge_steps"}
__all__ = [*_MODULES, *_ROUTED, "kd_config_state", "refusal", "steps_for"]


def steps_for(ws):
    """The steps module of the workspace's route."""
    return import_module(f"{__name__}.{_ROUTE_STEPS[ws.route]}")


def kd_config_state(profile, ws, kind: str, kd_config):
    """Check a launch of the `kind` student with another loss (`--kd_config`); return where that run stands."""
    return steps_for(ws).check_flags(profile, ws, kind, kd_config=kd_config)


def refusal(profile, ws, kind: str) -> str | None:
    """What the entry point would say, before loading anything, to the `kind` student's flags under `profile`."""
    from helpers.errors import refusal

    return refusal(lambda: steps_for(ws).check_flags(profile, ws, kind))


def _routed(name: str):
    def call(*args, **kwargs):
        ws = next(arg for arg in (*args, *kwargs.values()) if hasattr(arg, "route"))
        return getattr(steps_for(ws), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`{name}` of the workspace's route (steps.{name} on NeMo 2's, bridge_steps.{name} on Megatron-Bridge's)."
    return call


def __getattr__(name: str):
    if name in _ROUTED:
        return _routed(name)
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
