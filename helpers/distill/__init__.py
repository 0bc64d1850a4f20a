"""Notebook 03: distill each pruned student from the teacher's logits, and read the runs back.

    torchrun --nproc_per_node 2 -m helpers.distill ...         NeMo 2's route (`cli`), with NeMo's gpt_train.py flags
    torchrun --nproc_per_node 2 -m helpers.distill.bridge ...  Megatron-Bridge's route, with the flags of ModelOpt's
                                                               examples/megatron_bridge/distill.py
    checks.py         the rules every setting must pass before a model is loaded
    steps.py          what the notebook runs on NeMo 2's route: the commands a profile implies, launched with live
                      curves, read back
    bridge_steps.py   the same on Megatron-Bridge's route
    budget.py         steps, memory and time a distillation needs, before it runs
    nodes/            more than one node: the plan across nodes, the command each node runs, a Slurm script, and
                      what the entry point checks on every node (`python -m helpers.distill.nodes` plans one)
    runs.py           a run's checkpoints on disk: its state, resuming, the best one
    events.py         the scalars of a run's TensorBoard event files
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
    "bad_settings": "steps", "budget_table": "steps", "memory_estimates": "steps", "multi_node_plans": "steps",
    "show_node_plans": "steps", "throughput": "steps", "time_estimates": "steps", "check": "cli", "parser": "cli",
    "command": "steps", "flags": "steps", "run_name": "steps", "slurm_script": "steps",
}  # fmt: skip
# Route-dependent: each route's steps module has these, with the same signatures (the workspace comes first or second).
_ROUTED = (
    "best", "check_flags", "curves", "export_students", "memory_measured", "run_dir", "run_distillation",
    "step_seconds", "summary", "write_slurm_scripts",
)  # fmt: skip
_ROUTE_STEPS = {"nemo2": "steps", "bridge": "bridge_steps"}
__all__ = [
    *_MODULES, *_ROUTED, "best_and_step_times", "best_checkpoints", "kd_config_state", "refusal", "run_remaining",
    "show_slurm_scripts", "steps_for",
]  # fmt: skip


def steps_for(ws):
    """The steps module of the workspace's route."""
    return import_module(f"{__name__}.{_ROUTE_STEPS[ws.route]}")


def run_remaining(profile, ws, best: dict, overwrite: bool = False) -> dict:
    """`best` with each of the route's students it lacks distilled (`run_distillation`): {kind: best checkpoint}."""
    return best | {kind: steps_for(ws).run_distillation(profile, ws, kind, overwrite) for kind in ws.students if kind not in best}


def best_checkpoints(ws) -> dict:
    """Each student's best distilled checkpoint: {kind: its path, step and validation loss}."""
    return {kind: steps_for(ws).best(ws, kind) for kind in ws.students}


def best_and_step_times(ws, best: dict, estimate) -> str:
    """Each run's best checkpoint, and the measured seconds per step beside the estimate (`time_estimates`)."""
    lines = [f"{kind}: best checkpoint {record['checkpoint']} (step {record['step']}, val_loss {record['val_loss']})" for kind, record in best.items()]
    estimated = estimate.loc["seconds per step"].to_dict()
    return "\n".join([*lines, f"seconds per step, measured (median): {steps_for(ws).step_seconds(ws)}; estimated: {estimated}"])


def show_slurm_scripts(planned: list, ws, num_tokens: float, nodes: int) -> list:
    """Write each student's Slurm script of `num_tokens` on `nodes` nodes (`write_slurm_scripts`), print their paths and
    the first script; return the paths."""
    from helpers.distill.nodes import Scenario

    scripts = steps_for(ws).write_slurm_scripts(planned, ws, Scenario(num_tokens, nodes))
    for script in scripts:
        print(script)
    if scripts:
        print(scripts[0].read_text())
    return scripts


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
