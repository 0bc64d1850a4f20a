"""Two nodes rehearsed on one machine: two torchruns of one process each, meeting by c10d rendezvous on localhost,
distill the small Qwen3s through `python -m helpers.distill` as one data-parallel run of size 2.

The same steps run on one node of 2 processes and on the two nodes: they must train the same student. A second
two-node run loses node 1 once its first checkpoint is saved, and is launched again to the end. Its losses are not
compared: on CPU the steps after a resume differ from an uninterrupted run's on one node as on two. Without Apex or
Transformer Engine, Megatron restores Adam's step count as one tensor shared by every parameter
(megatron/core/optimizer/distrib_optimizer.py:795-802), which torch's Adam then advances once per parameter
(torch/optim/adam.py:686): here the first step after the resume counts as step 10, not 3.
"""

import os
import socket
import subprocess
import time
from types import SimpleNamespace

import psutil
import pytest
from launches import PROFILE, SETTINGS, changed, kill, start_two_nodes, wait_for_first_checkpoint

from helpers import distill
from helpers.distill import events, nodes, runs
from helpers.run.launch import run, torchrun

TIMEOUT_MINUTES = "2"  # the process groups' limit on two nodes (gloo's own: 30 min)
LOSS_TOLERANCE = 1e-6  # relative: the ranks see the same batches either way, and gloo sums the same two terms
REMOVED = "Removed {}: it was interrupted while being saved."


def two_node_flags(ws, log_dir) -> list[str]:
    flags = changed(distill.flags(PROFILE, ws, "depth"), **SETTINGS, log_dir=str(log_dir), devices="1", num_nodes="2")
    return [*flags, "--distributed_timeout_minutes", TIMEOUT_MINUTES]


def run_two_nodes(flags, logs, run_id) -> tuple[list[str], list[str]]:
    """Both nodes to the end: node 0's command, and each node's output."""
    logs.mkdir()
    command, launchers = start_two_nodes(flags, logs, run_id)
    statuses = [launcher.wait(timeout=600) for launcher in launchers]
    outputs = [(logs / f"node{n}.log").read_text() for n in range(2)]
    assert statuses == [0, 0], "\n".join(output[-3000:] for output in outputs)
    return command, outputs


def node(launcher: subprocess.Popen) -> int:
    """The number torchrun's rendezvous gave this launcher's node (its worker's GROUP_RANK)."""
    while not (workers := psutil.Process(launcher.pid).children()):
        time.sleep(0.1)
    return int(workers[0].environ()["GROUP_RANK"])


@pytest.fixture(scope="module")
def rehearsal(small_nemo, tmp_path_factory):
    """The same steps on one node of 2 processes and on two nodes of one."""
    ws, root = small_nemo, tmp_path_factory.mktemp("nodes")
    one = changed(distill.flags(PROFILE, ws, "depth"), **SETTINGS, log_dir=str(root / "one-node"))
    run(torchrun(2, "helpers.distill", *one), root / "one-node.log")
    flags = two_node_flags(ws, root / "two-nodes")
    command, _ = run_two_nodes(flags, root / "launch", "rehearsal")
    name = distill.run_name(ws, "depth")
    return SimpleNamespace(ws=ws, flags=flags, command=command, one=root / "one-node" / name, two=root / "two-nodes" / name)


@pytest.fixture(scope="module")
def lost_node(small_nemo, tmp_path_factory):
    """A two-node run whose node 1 is killed once the first checkpoint is saved, then launched again to the end."""
    root = tmp_path_factory.mktemp("lost-node")
    flags, run_dir = two_node_flags(small_nemo, root / "runs"), root / "runs" / distill.run_name(small_nemo, "depth")
    (root / "first").mkdir()
    _, launchers = start_two_nodes(flags, root / "first", "first")
    wait_for_first_checkpoint(run_dir, launchers, root / "first" / "node0.log")
    survivor, lost = sorted(launchers, key=node)
    killed = time.monotonic()
    kill(lost)
    status = survivor.wait(timeout=600)
    failed_after = time.monotonic() - killed
    interrupted = runs.state(run_dir, 4)
    for checkpoint in runs.checkpoints(run_dir):
        if checkpoint.last:  # as if the kill had cut its save short (when it has not): rank 0 of node 0 must remove it
            checkpoint.path.with_name(checkpoint.path.name + "-unfinished").touch()
    cut_short = [marker.name.removesuffix("-unfinished") for marker in (run_dir / "checkpoints").glob("*-unfinished")]
    _, outputs = run_two_nodes(flags, root / "second", "second")
    return SimpleNamespace(
        run_dir=run_dir, status=status, failed_after=failed_after, survivor_log=(root / "first" / "node0.log").read_text(),
        interrupted=interrupted, cut_short=cut_short, outputs=outputs,
    )  # fmt: skip


def test_both_nodes_ranks_train_as_one_data_parallel_group(rehearsal):
    ranks = runs.memory(rehearsal.two)
    assert [(r["node"], r["data_parallel_rank"], r["data_parallel_size"]) for r in ranks] == [(0, 0, 2), (1, 1, 2)]


def test_two_nodes_train_as_one_node_of_two_processes(rehearsal):
    for tag, steps in (("reduced_train_loss", [1, 2, 3, 4]), ("val_loss", [0, 2, 4])):
        two, one = events.series(rehearsal.two, tag), events.series(rehearsal.one, tag)
        assert list(two.index) == list(one.index) == steps
        assert two.to_numpy() == pytest.approx(one.to_numpy(), rel=LOSS_TOLERANCE), tag


def test_each_checkpoint_is_written_once_by_both_nodes_together(rehearsal):
    """The same checkpoints as on one node, each one folder holding every rank's shards, and no copy of it."""

    def layout(run_dir):
        return {c.name: sorted(f.name for f in (c / "weights").iterdir()) for c in (run_dir / "checkpoints").iterdir()}

    two, one = layout(rehearsal.two), layout(rehearsal.one)
    assert two == one and len(two) == 2  # the best and the last, named alike (the same losses), no "-v1" copies
    assert all({"__0_0.distcp", "__1_0.distcp", ".metadata"} <= set(files) for files in two.values())


def test_a_killed_node_fails_the_other_at_once_and_the_run_resumes_from_its_last_checkpoint(lost_node):
    assert lost_node.status != 0 and lost_node.failed_after < 60, lost_node.survivor_log[-3000:]
    assert lost_node.interrupted.status == "partial" and lost_node.interrupted.step == 2
    assert "interrupted at step 2 of 4: training resumes from there" in lost_node.outputs[0]
    assert runs.state(lost_node.run_dir, 4).status == "finished"
    assert list(events.series(lost_node.run_dir, "reduced_train_loss").index) == [1, 2, 3, 4]  # each step once


def test_rank0_of_node0_alone_removes_the_checkpoint_cut_short(lost_node):
    (name,) = lost_node.cut_short
    node0, node1 = lost_node.outputs
    assert node0.count(REMOVED.format(name)) == 1 and REMOVED.format(name) not in node1
    assert not (lost_node.run_dir / "checkpoints" / name).exists()


def test_the_slurm_scripts_srun_runs_the_command_each_node_ran(rehearsal, tmp_path):
    """The script run with stand-ins for srun (which records what it was asked to run) and scontrol."""
    port = rehearsal.command[rehearsal.command.index("--rdzv_endpoint") + 1].rpartition(":")[2]
    script = tmp_path / "run.sbatch"
    script.write_text(nodes.slurm_script(rehearsal.flags, 2, 1, False, rehearsal.ws, hours=0.1, port=int(port)))
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(f"#!/bin/bash\nprintf '%s\\0' \"$@\" > {tmp_path / 'srun.args'}\n")
    # The node list as scontrol prints it, long enough that a reader stopping after the first name would leave it
    # writing into a closed pipe (under the script's pipefail, SIGPIPE would end the job).
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho localhost\nseq -f 'node%06g' 2 200000\n")
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "rehearsal", "SLURM_JOB_NODELIST": "localhost,node002"}
    subprocess.run(["bash", str(script)], env=environment, check=True)
    srun = (tmp_path / "srun.args").read_text().split("\0")[:-1]
    launched = srun[srun.index("torchrun") :]
    assert launched[1:] == rehearsal.command[1:]  # all but the launcher's path: the container's torchrun
    assert "--kill-on-bad-exit=1" in srun and f"--container-image={nodes.CONTAINER}" in srun


def test_a_node_given_another_directory_is_refused_on_every_node(small_nemo, tmp_path):
    """The first node's work directory is not the second's: both refuse before anything is loaded or written."""
    flags = changed(distill.flags(PROFILE, small_nemo, "depth"), **SETTINGS, devices="1", num_nodes="2")
    shared, other = tmp_path / "shared", tmp_path / "other"
    (tmp_path / "launch").mkdir()
    _, launchers = start_two_nodes(changed(flags, log_dir=str(shared)), tmp_path / "launch", "refused", changed(flags, log_dir=str(other)))
    statuses = [launcher.wait(timeout=300) for launcher in launchers]
    refusal = f"--log_dir: the nodes do not share one work directory: node 1 ({socket.gethostname()}) in {other} did not see the file node 0"
    for n, status in enumerate(statuses):
        log = (tmp_path / "launch" / f"node{n}.log").read_text()
        assert status != 0 and "helpers.distill refused to start" in log and refusal in log, log[-3000:]
    assert not other.exists() and not list(shared.glob(".nodes-*"))  # nothing on node 1's; node 0 removed its file
