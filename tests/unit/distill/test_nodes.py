"""More than one node, without a model: the plan's arithmetic, the launch, the Slurm script, the checks every node makes,
the clean-up rendezvous across two torchruns, and the process groups' timeout."""

import dataclasses
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from launches import free_port

from helpers.distill import budget, nodes
from helpers.errors import SettingError
from helpers.profiles import PROFILES
from helpers.series import dry_run
from helpers.workspace import Workspace

QWEN3_8B = PROFILES["qwen3-8b"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture(scope="module")
def qwen3_8b():
    """The qwen3-8b students and teacher, from the published config, and the H100's throughput."""
    teacher, students = dry_run.shapes(QWEN3_8B)
    return lambda tokens, count: nodes.plan(QWEN3_8B, nodes.Scenario(tokens, count), teacher, students, budget.throughput(QWEN3_8B.gpu))


def test_90b_tokens_on_12_and_96_nodes(qwen3_8b):
    twelve, ninety_six, one = qwen3_8b(90e9, 12), qwen3_8b(90e9, 96), qwen3_8b(90e9, 1)
    assert twelve.kd.max_steps == math.ceil(90e9 / (768 * 4096)) == 28_611
    assert budget.data_parallel_size(twelve.profile.distill) == 12 and budget.data_parallel_size(ninety_six.profile.distill) == 96
    assert twelve.column()["micro-batches per replica per step"] == "8" and ninety_six.column()["micro-batches per replica per step"] == "1"
    for kind in ("depth", "width"):
        # the same GPU-hours on any count above one; each node keeps MULTI_NODE_EFFICIENCY of a lone node's speed
        assert ninety_six.hours(kind) * 96 == pytest.approx(twelve.hours(kind) * 12)
        assert one.hours(kind) == pytest.approx(twelve.hours(kind) * 12 * budget.MULTI_NODE_EFFICIENCY)
    assert 70 < twelve.hours("width") < 85 and 7000 < twelve.hours("width") * 96 < 8000  # ~78 h, ~7,500 GPU-hours
    assert ninety_six.memory_gb < twelve.memory_gb < one.memory_gb  # the optimizer state spreads over more replicas
    assert twelve.data_gb == pytest.approx(twelve.kd.tokens * 4 / 1e9)  # Qwen3's 151,936 ids take int32 in .bin files


def test_the_scaling_efficiency_reproduces_the_measured_96_node_run():
    """Planned at the efficiency it defines, the 96-node run costs what it measured: 600 GPU-hours per 1,000 steps."""
    measured = budget.NEMOTRON_NANO_96_NODES
    settings = dataclasses.replace(QWEN3_8B.distill, num_nodes=measured.nodes, devices=measured.gpus_per_node, gbs=measured.gbs)
    kd = budget.KDPlan(0, measured.seq_length, measured.gbs, 1000, 100, 1)
    student, teacher = (budget.ModelShape(int(n), 1, 1, 1) for n in (measured.student_parameters, measured.teacher_parameters))
    seconds = budget.seconds_per_step(student, teacher, kd, settings, budget.throughput(QWEN3_8B.gpu))
    assert seconds * 1000 * measured.nodes * measured.gpus_per_node / 3600 == pytest.approx(measured.gpu_hours_per_1000_steps)
    assert 0.6 < budget.MULTI_NODE_EFFICIENCY < 0.7


def test_a_node_count_the_global_batch_cannot_share_is_refused_with_the_counts_that_can(qwen3_8b):
    with pytest.raises(SettingError) as refused:
        qwen3_8b(90e9, 7)
    assert "7 nodes: --gbs: 768 is not divisible by --mbs 8 x 7 data-parallel rank(s)" in str(refused.value)
    assert "--num_nodes 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96" in str(refused.value)


def test_every_node_runs_the_same_c10d_launch_and_a_multi_node_one_needs_an_endpoint():
    command = nodes.launch(2, 8, "node001:29500", "job", "helpers.distill", "--num_nodes", 2)
    assert command[:11] == ["torchrun", "--nnodes", "2", "--nproc_per_node", "8", "--rdzv_backend", "c10d", "--rdzv_endpoint", "node001:29500", "--rdzv_id", "job"]
    assert command[11:] == ["-m", "helpers.distill", "--num_nodes", "2"]  # no --node_rank: c10d numbers the nodes
    with pytest.raises(SettingError, match="--rdzv_endpoint: a launch on 2 nodes needs the address where their torchruns meet"):
        nodes.launch(2, 8, None, "job", "helpers.distill")
    with pytest.raises(SettingError, match="--rdzv_endpoint: 'node001' is not HOST:PORT"):
        nodes.launch(2, 8, "node001", "job", "helpers.distill")


@pytest.mark.parametrize("environment, message", [
    ({"GROUP_WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "8"}, "--num_nodes: torchrun formed 1 node(s), but --num_nodes is 2"),
    ({"GROUP_WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "4"}, "--devices: torchrun started 4 process(es) on this node, but --devices is 8"),
])  # fmt: skip
def test_a_launch_that_does_not_form_the_nodes_the_flags_name_is_refused(monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingError, match=re.escape(message)):
        nodes.require_nodes(8, 2)


def test_the_slurm_script_is_valid_bash_with_one_torchrun_per_node_in_the_container(tmp_path):
    flags = ["--name", "run", "--num_nodes", "12", "--log_dir", str(tmp_path / "distill")]
    script = tmp_path / "run.sbatch"
    script.write_text(nodes.slurm_script(flags, 12, 8, True, Workspace(tmp_path, "Model"), hours=2.5))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False).returncode == 0
    text = script.read_text()
    for line in ("#SBATCH --nodes=12", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8", "#SBATCH --time=3:10:00", f"CONTAINER={nodes.CONTAINER}"):
        assert line in text.splitlines()
    assert 'srun --wait=60 --kill-on-bad-exit=1 \\\n    --container-image="$CONTAINER"' in text
    assert '--rdzv_endpoint "$HEAD_NODE:29500" --rdzv_id "$SLURM_JOB_ID" -m helpers.distill --name run' in text
    repository = next(line for line in text.splitlines() if line.startswith("REPOSITORY="))  # mounted into the container
    assert Path(repository.removeprefix("REPOSITORY=${REPOSITORY:-").removesuffix("}"), "03_distillation.ipynb").is_file(), repository


# Rank 1 stops answering, as a hung process on a live node does (its connections stay open: nothing tells rank 0);
# rank 0 reports how long each collective waited for it. Without a limit the data-parallel group would wait
# Megatron's 30 minutes; rank 1 gives up after a minute, so rank 0 then sees its connection close instead.
FROZEN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch, torch.distributed as dist
    from megatron.core import parallel_state
    from helpers.distill import nodes

    nodes.give_up_after(float(sys.argv[1]))
    dist.init_process_group("gloo")
    parallel_state.initialize_model_parallel()  # as NeMo calls it (nemo/lightning/_strategy_lib.py:124)
    done = Path(sys.argv[2])
    if dist.get_rank() == 1:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    else:
        for name, group in (("data-parallel", parallel_state.get_data_parallel_group()), ("world", None)):
            start = time.monotonic()
            try:
                dist.all_reduce(torch.ones(1), group=group)
            except RuntimeError as error:
                print(f"{name} group: gave up after {time.monotonic() - start:.0f} s: {'Timed out' in str(error)}", flush=True)
        done.touch()
    """
)


def test_every_process_group_gives_up_on_a_process_that_stops_answering(tmp_path):
    script = tmp_path / "frozen.py"
    script.write_text(FROZEN)
    result = subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", str(script), "0.1", str(tmp_path / "done")],
                            capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    reports = re.findall(r"(\S+) group: gave up after (\d+) s: (\w+)", result.stdout)
    waits = {group: (int(seconds), timed_out) for group, seconds, timed_out in reports}
    assert waits.keys() == {"data-parallel", "world"}, result.stdout
    assert all(timed_out == "True" and 6 <= seconds < 30 for seconds, timed_out in waits.values()), waits  # 0.1 min: 6 s


def test_rank0_of_node0_alone_cleans_up_while_the_other_node_waits(tmp_path):
    """`prepare`'s rendezvous across two torchruns of one process each, meeting by c10d: the other node waits."""
    from test_launch import WORKER

    (tmp_path / "logs" / "run" / "old-checkpoint").mkdir(parents=True)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = free_port()
    command = [*TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_endpoint", f"localhost:{port}",
               "--rdzv_id", "cleanup", str(script), str(tmp_path / "logs")]  # fmt: skip
    started = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in started]
    assert [process.returncode for process in started] == [0, 0], "\n".join(outputs)[-4000:]
    for rank in (0, 1):  # one process per node: rank 1 is node 1's
        assert sum(f"rank {rank}: old run present False, settings recorded True" in output for output in outputs) == 1
