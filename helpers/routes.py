"""Routes: which NVIDIA stack carries the four steps, chosen like the profile, as data.

    nemo2    NeMo 2's `llm.*` API in nvcr.io/nvidia/nemo:25.09, the reference tutorial's route: the teacher is
             imported into a NeMo 2 checkpoint, and pruning and distillation read and write NeMo 2 checkpoints.
    bridge   Megatron-Bridge + Model Optimizer in nvcr.io/nvidia/nemo:26.02, the route NVIDIA's current guides
             take: `AutoBridge` builds the Megatron model straight from a Hugging Face checkpoint, pruning writes
             Hugging Face checkpoints, and distillation writes Megatron checkpoints that are exported back.

The notebooks read the route named by their `ROUTE` parameter (or TUTORIAL_ROUTE) and never branch on its name;
each step asks the route which of its implementations to run. Both routes tell the same story, make the same
students from the same data on the same budget, and write their outputs to a folder of their own.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata

from helpers.errors import refuse
from helpers.profiles import KINDS

SEARCHED = "nas"  # the student pruned to a parameter budget by ModelOpt's architecture search

ROUTE_ENV = "TUTORIAL_ROUTE"
DEFAULT_ROUTE = "nemo2"


@dataclass(frozen=True)
class Route:
    name: str
    title: str
    container: str  # the NGC container the GPU profiles run in
    framework: str  # the distribution that carries the route's API
    between_steps: str  # the checkpoint format the steps hand each other
    venv: str  # the CPU rehearsal's virtual environment (the Makefile builds it)
    extra_install: str = ""  # what the container lacks, installed on top of it
    searches_budget: bool = False  # its ModelOpt prunes to a parameter budget (NAS): the third student, `nas`

    def container_setup(self, profile_name: str, workdir: str = "/data/work") -> list[str]:
        """The shell lines that start the route's container on a GPU machine and prepare it for the series."""
        return [
            "docker run --gpus all -it --rm --shm-size=16g --ulimit memlock=-1 \\",
            f'    -v "$PWD":/workspace/tutorial -v {workdir}:{workdir} -p 8888:8888 \\',
            f"    -e HF_TOKEN -e TUTORIAL_PROFILE={profile_name} -e TUTORIAL_ROUTE={self.name} -e TUTORIAL_WORKDIR={workdir} \\",
            f"    {self.container}",
            "cd /workspace/tutorial",
            *([self.extra_install] if self.extra_install else []),
            "pip install --no-deps --no-build-isolation -e .   # helpers only: the container's libraries stay",
        ]

    @property
    def students(self) -> tuple[str, ...]:
        """The pruned students the series makes on this route: the hand-picked two, and the searched one."""
        return (*KINDS, SEARCHED) if self.searches_budget else KINDS

    @property
    def packages(self) -> tuple[str, ...]:
        """The framework packages whose versions results record."""
        return (self.framework, "megatron-core", "nvidia-modelopt", "torch", "transformers")


ROUTES: dict[str, Route] = {
    route.name: route
    for route in (
        Route(
            name="nemo2",
            title="NeMo 2 (llm.import_ckpt, llm.prune, llm.distill, llm.export_ckpt)",
            container="nvcr.io/nvidia/nemo:25.09",
            framework="nemo-toolkit",
            between_steps="NeMo 2 checkpoints",
            venv=".venv",
        ),
        Route(
            name="bridge",
            title="Megatron-Bridge + Model Optimizer (AutoBridge, mtp.prune, Megatron-Bridge distillation)",
            container="nvcr.io/nvidia/nemo:26.02",
            framework="megatron-bridge",
            between_steps="Hugging Face checkpoints (Megatron checkpoints inside a distillation run)",
            venv=".venv-bridge",
            # The container's ModelOpt is 0.41: no parameter-budget search, no examples/megatron_bridge (0.42+).
            extra_install="pip install nvidia-modelopt==0.44.0",
            searches_budget=True,  # ModelOpt >= 0.42 (mcore_minitron's `params` constraint); 25.09's 0.35.1 lacks it
        ),
    )
}


def get_route(name: str = DEFAULT_ROUTE) -> Route:
    """The route named by $TUTORIAL_ROUTE if set, else `name` (the notebook's ROUTE parameter)."""
    setting = ROUTE_ENV if os.environ.get(ROUTE_ENV) else "ROUTE"
    name = os.environ.get(ROUTE_ENV) or name
    if name not in ROUTES:
        raise refuse(setting, f"unknown route {name!r}", f"choose one of: {', '.join(ROUTES)}")
    return ROUTES[name]


def installed_versions(route: Route) -> dict[str, str | None]:
    """The installed version of each of the route's framework packages (None: not installed)."""
    versions = {}
    for package in route.packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def require_route_installed(route: Route) -> None:
    """Refuse a route whose framework this environment lacks, naming the environment that has it."""
    if installed_versions(route)[route.framework] is None:
        raise refuse(
            "ROUTE",
            f"the {route.name!r} route needs {route.framework}, which this environment ({sys.prefix}) does not have",
            f"run it in {route.container} on GPUs, or on CPU with `make run ROUTE={route.name}` (its environment is "
            f"{route.venv}; in JupyterLab pick that environment's kernel)",
        )
