"""More than one node: the plan across nodes, the command every node runs, and what a multi-node run checks.

    python -m helpers.distill.nodes --profile qwen3-8b --nodes 12 --tokens 90e9 [--write]

prints the plan (steps, tokens per second per node, wall time, GPU-hours, memory, disk) and the Slurm batch script
that runs it; `--write` puts one script per student into the work directory. There is no scheduler here: the script
is for an existing Slurm cluster, and every node runs the same command (`launch`): one torchrun that starts the
node's processes and meets the other nodes' torchruns by c10d rendezvous at HOST:PORT.

What one node cannot get wrong, the entry point checks on every node before a model loads, and the nodes start only
if all agree (`start_together`): that torchrun formed the nodes --num_nodes names (`require_nodes`) and that every node
sees the work directory node 0 writes to. `give_up_after` bounds how long the others wait for a node that stops
answering.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pandas as pd

from helpers import REPOSITORY
from helpers.distill import budget
from helpers.distill.checks import data_parallel_problems
from helpers.errors import Problem, SettingError, raise_if_any, refuse
from helpers.profiles import H100, Profile
from helpers.workspace import Workspace

T = TypeVar("T")
PORT = 29500  # the rendezvous port of NeMo's own Slurm launcher (nemo_run/core/execution/launcher.py:44)
CONTAINER = "nvcr.io/nvidia/nemo:25.09"
MOUNTED = "/workspace/tutorial"  # where the container sees this repository, as the README's `docker run` mounts it
VISIBLE_WITHIN = 10.0  # seconds a node waits for the first node's file to appear in the shared work directory


@dataclass(frozen=True)
class Scenario:
    """A token budget on a number of nodes (each with the profile's devices)."""

    num_tokens: int
    nodes: int


def at_scale(profile: Profile, scenario: Scenario) -> Profile:
    """The profile with its distillation spread over `scenario.nodes` nodes for `scenario.num_tokens` tokens."""
    settings = replace(profile.distill, num_nodes=scenario.nodes, num_tokens=int(scenario.num_tokens))
    return replace(profile, distill=settings)


@dataclass(frozen=True)
class NodePlan:
    """One scenario, planned: the settings across nodes and what the run costs for each student."""

    profile: Profile  # at scale
    kd: budget.KDPlan
    seconds_per_step: dict[str, float]  # per student
    memory_gb: float  # per device, the larger of the students
    disk_gb: float  # the work directory at its peak
    data_gb: float  # the tokenized data the budget reads once

    def hours(self, kind: str) -> float:
        return self.seconds_per_step[kind] * self.kd.max_steps / 3600

    @property
    def label(self) -> str:
        nodes = self.profile.distill.num_nodes
        return f"{_tokens(self.kd.num_tokens)} tokens on {nodes} node{'s' if nodes > 1 else ''}"

    def column(self) -> dict[str, str]:
        settings, kd = self.profile.distill, self.kd
        data_parallel = budget.data_parallel_size(settings)
        rows = {
            "nodes x devices": f"{settings.num_nodes} x {settings.devices}",
            "model split (tp x pp x cp)": f"{settings.tp_size} x {settings.pp_size} x {settings.cp_size}",
            "data-parallel size": f"{data_parallel}",
            "global batch / micro batch": f"{kd.gbs} / {settings.mbs}",
            "micro-batches per replica per step": f"{kd.gbs // (settings.mbs * data_parallel)}",
            "steps": f"{kd.max_steps:,}",
            "validation and checkpoint every": f"{kd.interval} steps",
            "tokens seen": _tokens(kd.tokens),
        }
        unit = "GPU" if self.profile.gpu else "process"
        for kind, seconds in self.seconds_per_step.items():
            hours = self.hours(kind)
            rows[f"{kind}: tokens/s per node"] = f"{kd.gbs * kd.seq_length / seconds / settings.num_nodes:,.0f}"
            rows[f"{kind}: wall time"] = _duration(hours)
            rows[f"{kind}: {unit}-hours"] = f"{hours * settings.devices * settings.num_nodes:,.0f}"
        rows["memory per device (GB, larger student)"] = f"{self.memory_gb:.1f}"
        rows["tokenized data (GB)"] = f"{self.data_gb:,.1f}"
        rows["disk at its peak (GB)"] = f"{self.disk_gb:,.0f}"
        return rows


def _tokens(count: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:g}"


def _duration(hours: float) -> str:
    if hours < 2 / 60:
        return f"{hours * 3600:.0f} s"
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def token_bytes(vocab_size: int) -> int:
    """Bytes per token in Megatron's .bin files: uint16 below 65,500 ids, int32 above (indexed_dataset.py:114-117)."""
    return 2 if vocab_size < 65500 else 4


def plan(
    profile: Profile, scenario: Scenario, teacher: budget.ModelShape, students: dict[str, budget.ModelShape], rate: budget.Throughput
) -> NodePlan:
    """Plan one scenario; refuse (SettingError) a node count or global batch the data-parallel ranks cannot share."""
    scaled = at_scale(profile, scenario)
    settings, seq_length = scaled.distill, profile.data.seq_length
    raise_if_any([p._replace(setting=f"{scenario.nodes} nodes: {p.setting}") for p in data_parallel_problems(settings)])
    kd = budget.plan(settings, seq_length)
    seconds = {kind: budget.seconds_per_step(shape, teacher, kd, settings, rate) for kind, shape in students.items()}
    memory = max(budget.memory_per_device(shape, teacher, settings, seq_length).loc["total", "GB"] for shape in students.values())
    data_gb = kd.tokens * token_bytes(teacher.vocab_size) / 1e9
    sizes = {kind: shape.parameters for kind, shape in students.items()}
    disk = budget.disk_estimate(teacher.parameters, sizes, data_gb, async_saves=profile.gpu is not None)["GB"]
    return NodePlan(scaled, kd, seconds, memory, disk[[row for row in disk.index if row.startswith("peak")]].item(), data_gb)


def plans(profile: Profile, scenarios, teacher, students, rate) -> tuple[list[NodePlan], list[Problem]]:
    """Every scenario that can run, planned, and the refusals of those that cannot."""
    planned, refused = [], []
    for scenario in scenarios:
        try:
            planned.append(plan(profile, scenario, teacher, students, rate))
        except SettingError as error:
            refused += [problem for problem in error.problems if problem not in refused]
    return planned, refused


def table(planned: list[NodePlan]) -> pd.DataFrame:
    return pd.DataFrame({p.label: p.column() for p in planned})


def efficiency_note(rate: budget.Throughput) -> str:
    """Where the tokens per second per node come from, in a sentence."""
    if rate.across_nodes == 1:
        return f"Tokens/s per node: {rate.efficiency:.0%} of {rate.source}, the same on every node."
    return (
        f"Tokens/s per node: one node runs at {rate.efficiency:.0%} of peak ({rate.source}); on more than one node each "
        f"keeps {rate.across_nodes:.2f} of that, as measured on {budget.NEMOTRON_NANO_96_NODES.source} "
        f"({budget.NEMOTRON_NANO_96_NODES.fraction_of_peak(H100.bf16_tflops):.1%} of peak). One measured point, "
        "at 96 nodes: for fewer nodes the wall time is an upper bound."
    )


def launch(
    nodes: int, devices: int, endpoint: str | None, run_id: str, module: str, *args: object, launcher: str = "torchrun"
) -> list[str]:
    """The command every node runs: `torchrun --nnodes N --nproc_per_node D --rdzv_backend c10d --rdzv_endpoint HOST:PORT`.

    The same on every node, without --node_rank: c10d rendezvous ignores it (torch/distributed/run.py:860-868) and
    numbers the nodes in the order of their host names (elastic/rendezvous/dynamic_rendezvous.py:833). Node 0 then
    hosts the store all processes meet on (MASTER_ADDR:MASTER_PORT, dynamic_rendezvous.py:1205-1222), where rank 0
    alone clears a run before the others look (`launch.rank0_first`). HOST:PORT is where the nodes first meet: any
    node's address that all can reach, the first node's in the Slurm script.
    """
    if nodes > 1 and not endpoint:
        raise refuse(
            "--rdzv_endpoint",
            f"a launch on {nodes} nodes needs the address where their torchruns meet",
            f"give HOST:PORT of one of the nodes, e.g. the first: $(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | sed -n 1p):{PORT}",
        )
    host, _, port = (endpoint or f"localhost:{PORT}").rpartition(":")
    if not host or not port.isdigit():
        raise refuse("--rdzv_endpoint", f"{endpoint!r} is not HOST:PORT", f"for example node001:{PORT}")
    return [
        launcher, "--nnodes", str(nodes), "--nproc_per_node", str(devices), "--rdzv_backend", "c10d",
        "--rdzv_endpoint", f"{host}:{port}", "--rdzv_id", run_id, "-m", module, *map(str, args),
    ]  # fmt: skip


def slurm_script(flags: list[str], nodes: int, devices: int, gpus: bool, ws: Workspace, hours: float, port: int = PORT) -> str:
    """The batch script that runs `python -m helpers.distill <flags>` on `nodes` nodes of `devices` processes each.

    One task per node runs `launch`'s command in NeMo's container (pyxis/enroot's --container-image), with the work
    directory mounted at its own path and this repository at MOUNTED, as NeMo's Slurm launcher lays its jobs out
    (nemo_run/core/execution/slurm.py:974-1013 and templates/slurm.sh.j2: srun --wait=60 --kill-on-bad-exit=1).
    """
    name = flags[flags.index("--name") + 1]
    command = launch(nodes, devices, f"$HEAD_NODE:{port}", "$SLURM_JOB_ID", "helpers.distill", *flags)
    limit = math.ceil(hours * 1.2 * 60) + 10  # the plan, a fifth more, and ten minutes to start
    options = [f"--job-name={name}", f"--nodes={nodes}", "--ntasks-per-node=1", *([f"--gpus-per-node={devices}"] if gpus else []),
               "--exclusive", f"--time={limit // 60}:{limit % 60:02d}:00", f"--output={ws.logs / f'{name}-%j.log'}"]  # fmt: skip
    sbatch = "\n".join(f"#SBATCH {option}" for option in options)
    return f"""#!/bin/bash
# Distill {name} on {nodes} node(s) x {devices} {"GPUs" if gpus else "processes"}: about {_duration(hours)} by the plan
# (python -m helpers.distill.nodes). Submit it with sbatch, adding --partition or --account as your site needs.
{sbatch}
#
# What a run over several nodes needs, beyond one node:
# - One work directory at the same path on every node (Lustre, GPFS, NFS): all ranks write each checkpoint together,
#   and the run's settings, lock and best checkpoint live there. helpers.distill refuses to start when a node does not
#   see a file the first node wrote there.
# - Nodes that reach each other: the first node's host name resolves on every node (the rendezvous on port {port}, then
#   the store torchrun opens on a free port of node 0); NCCL crosses nodes over the fast network: set NCCL_IB_HCA (the
#   InfiniBand adapters) and NCCL_SOCKET_IFNAME (the interface that reaches the other nodes) as your site documents;
#   NCCL_DEBUG=INFO once shows the transport NCCL chose (NET/IB between nodes).
# - A bound on waiting: a process that stops answering (a hung GPU, a lost node) holds every other rank in its next
#   collective for the process groups' timeout, 10 min for NCCL's world group and 30 min for the groups Megatron makes
#   for NeMo (megatron/core/parallel_state.py:480); helpers.distill --distributed_timeout_minutes sets one limit for
#   all (keep it above your slowest checkpoint save). srun --kill-on-bad-exit=1 stops every node once one fails.
# - Resuming: submit this script again after a failure or a time limit (--time is the plan and a fifth more; lower it
#   to your partition's limit and resubmit until the run is done): the run resumes from its last complete checkpoint,
#   rank 0 of node 0 alone removing a checkpoint cut short while the other ranks wait.
set -euo pipefail

CONTAINER={CONTAINER}
# This repository on the nodes, where torchrun runs `-m helpers.distill` from. The default is where the script was
# written; written inside the container, that is the container's path: submit with REPOSITORY=<the clone> sbatch ...
REPOSITORY=${{REPOSITORY:-{shlex.quote(str(REPOSITORY))}}}
WORKDIR={shlex.quote(str(ws.root))}  # at the same path on every node and in the container: the flags name it
# The first node hosts the rendezvous. (sed reads every name: `head -n 1` would leave scontrol writing into a closed
# pipe, and under pipefail its SIGPIPE would end the job.)
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)

srun --wait=60 --kill-on-bad-exit=1 \\
    --container-image="$CONTAINER" --container-mounts="$WORKDIR:$WORKDIR,$REPOSITORY:{MOUNTED}" \\
    --container-workdir={MOUNTED} \\
    {_shell_join(command)}
"""


def _shell_join(words: list[str]) -> str:
    """`words` as a shell command: a word with a $VARIABLE in double quotes (expanded), every other one quoted as is."""
    return " ".join(f'"{word}"' if word.startswith("$") else shlex.quote(word) for word in words)


def require_nodes(devices: int, num_nodes: int) -> None:
    """Refuse unless torchrun formed `num_nodes` nodes and started `devices` processes on this one."""
    formed = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))  # not torchrun's: all here
    problems = []
    if formed != num_nodes:
        problems.append(Problem(
            "--num_nodes", f"torchrun formed {formed} node(s), but --num_nodes is {num_nodes}",
            f"start one torchrun on each of {num_nodes} node(s): --nnodes {num_nodes} --rdzv_backend c10d --rdzv_endpoint HOST:PORT "
            "(python -m helpers.distill.nodes prints the command and a Slurm script)",
        ))  # fmt: skip
    if local != devices:
        started = f"torchrun started {local} process(es) on this node, but --devices is {devices}"
        problems.append(Problem("--devices", started, f"launch with torchrun --nproc_per_node {devices}"))
    raise_if_any(problems)


def start_together(checks: Callable[[], T], directory: Path, setting: str, visible_within: float = VISIBLE_WITHIN) -> T:
    """Run `checks` on every rank; start only if every rank of every node passed them and every node sees
    `directory` as node 0 does. Otherwise every rank refuses, with every problem any node found.

    On one node this is `checks()`. On several, a node that refuses alone would leave the others waiting for it
    in their first collective, so the ranks meet on torchrun's store (as `launch.rank0_first` does) to agree. The
    directory: rank 0 writes a file of a new name into it before its checks, and each node's first process must
    find it within `visible_within` seconds. The nodes write every checkpoint together (each rank its shards,
    rank 0 the metadata), so a directory on each node's own disk would leave every checkpoint in pieces on several
    machines, none complete.
    """
    nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
    if nodes == 1:
        return checks()
    store, rank = _store("start"), int(os.environ["RANK"])
    here = {"node": int(os.environ["GROUP_RANK"]), "host": socket.gethostname(), "directory": str(directory.resolve())}
    if rank == 0:
        directory.mkdir(parents=True, exist_ok=True)
        marker = directory / f".nodes-{uuid.uuid4().hex}"
        marker.write_text(here["host"])
        store.set("marker", json.dumps({**here, "name": marker.name}))
    written = json.loads(store.get("marker"))
    try:
        result, problems = checks(), []
    except SettingError as error:
        result, problems = None, list(error.problems)
    seen = _appears(directory / written["name"], visible_within) if int(os.environ["LOCAL_RANK"]) == 0 else True
    store.set(f"rank {rank}", json.dumps({**here, "problems": problems, "seen": seen}))
    keys = [f"rank {other}" for other in range(int(os.environ["WORLD_SIZE"]))]
    store.wait(keys)
    answers = [json.loads(store.get(key)) for key in keys]
    if rank == 0:
        marker.unlink()  # every node has looked
    problems = _by_node(answers, nodes)
    blind = [f"node {a['node']} ({a['host']}) in {a['directory']}" for a in answers if not a["seen"]]
    if blind:
        problems.append(Problem(
            setting,
            f"the nodes do not share one work directory: {', '.join(blind)} did not see the file node 0 ({written['host']}) "
            f"wrote into {written['directory']} within {visible_within:g} s",
            "put the work directory on storage every node mounts at the same path (Lustre, GPFS, NFS), and give that path on every node",
        ))  # fmt: skip
    raise_if_any(problems)
    return result


def _by_node(answers: list[dict], nodes: int) -> list[Problem]:
    """Every problem the ranks found, once; one that not every node found names the nodes that did."""
    where: dict[Problem, set[str]] = {}
    for answer in answers:
        for problem in answer["problems"]:
            where.setdefault(Problem(*problem), set()).add(f"node {answer['node']} ({answer['host']})")
    return [p if len(found) == nodes else p._replace(problem=f"on {', '.join(sorted(found))}: {p.problem}") for p, found in where.items()]


def _store(key: str, timeout: timedelta = timedelta(minutes=10)):
    """torchrun's key-value store at MASTER_ADDR:MASTER_PORT, under a prefix of this launch's own."""
    from torch.distributed import PrefixStore
    from torch.distributed.rendezvous import _create_c10d_store

    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    store = _create_c10d_store(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), rank, world, timeout)
    return PrefixStore(f"helpers/{key}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def _appears(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def give_up_after(minutes: float) -> None:
    """Make every process group of the run abandon a collective, and so fail, after `minutes` without an answer.

    Otherwise a process that stops answering holds the others for the groups' defaults. NeMo makes the world
    group with torch's (30 min for gloo, 10 for NCCL; megatron_strategy.py:614-618 takes another only from
    TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC), then Megatron's groups without a timeout, so Megatron's 30 min apply
    (nemo/lightning/_strategy_lib.py:124 -> megatron/core/parallel_state.py:480, :730). NeMo calls Megatron's
    `initialize_model_parallel` through the module, right after making the world group (megatron_strategy.py:631)
    and again when it sets the model up (:668): wrapping it sets both timeouts there.
    """
    import torch.distributed
    from megatron.core import parallel_state

    initialize = parallel_state.initialize_model_parallel

    @functools.wraps(initialize)
    def with_timeout(*args, **kwargs):
        torch.distributed.distributed_c10d._set_pg_timeout(timedelta(minutes=minutes))  # the world group
        return initialize(*args, **{**kwargs, "distributed_timeout_minutes": minutes})

    parallel_state.initialize_model_parallel = with_timeout


def scenarios(profile: Profile, nodes: int, num_tokens: float) -> list[Scenario]:
    """The profile's own budget on its own nodes and on `nodes`, and `num_tokens` on `nodes`."""
    own = profile.distill.num_tokens
    return list(dict.fromkeys([Scenario(own, profile.distill.num_nodes), Scenario(own, nodes), Scenario(int(num_tokens), nodes)]))
