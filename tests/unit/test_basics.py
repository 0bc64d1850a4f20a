"""Errors, atomic outputs, the work directory and the command launcher."""

import os
import sys

import pytest

from helpers.errors import Problem, SettingError, raise_if_any, refuse
from helpers.run.launch import CommandFailed, child_env, run
from helpers.run.outputs import atomic_output, partial_path, produce
from helpers.workspace import Workspace, open_workspace


def test_setting_error_names_setting_problem_and_fix():
    error = SettingError(Problem("--mbs", "0 is not a size", "give 1 or more"), Problem("--gbs", "odd", "even"))
    assert str(error) == "--mbs: 0 is not a size\n  fix: give 1 or more\n--gbs: odd\n  fix: even"
    assert isinstance(refuse("a", "b", "c"), SettingError)
    raise_if_any([])
    with pytest.raises(SettingError):
        raise_if_any([Problem("a", "b", "c")])


def test_atomic_output_keeps_the_previous_output_when_the_build_fails(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("kept")
    with pytest.raises(RuntimeError), atomic_output(final) as partial:
        (partial / "new").parent.mkdir()
        (partial / "new").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (final / "old").read_text() == "kept"


def test_produce_reuses_valid_outputs_and_rebuilds_on_overwrite(tmp_path):
    builds = []

    def build(path):
        builds.append(path)
        path.mkdir()
        (path / "done").write_text(str(len(builds)))

    output = tmp_path / "model"
    is_valid = lambda p: (p / "done").is_file()  # noqa: E731
    for overwrite in (False, False, True):
        produce(output, build, is_valid=is_valid, overwrite=overwrite)
    assert len(builds) == 2 and (output / "done").read_text() == "2"
    assert all(path == partial_path(output) for path in builds) and not partial_path(output).exists()


def test_produce_refuses_an_invalid_build(tmp_path):
    with pytest.raises(RuntimeError, match="not a valid"):
        produce(tmp_path / "x", lambda p: p.mkdir(), is_valid=lambda p: False)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_work_directory_is_refused(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(blocker))
    with pytest.raises(SettingError, match="TUTORIAL_WORKDIR: the work directory .* is not writable"):
        open_workspace("tiny", "Qwen3-tiny")


def test_workspace_lives_under_the_profile_and_route(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path))
    nemo2, bridge = open_workspace("tiny", "Qwen3-tiny"), open_workspace("tiny", "Qwen3-tiny", route="bridge")
    assert nemo2.root == tmp_path / "tiny" / "nemo2" and bridge.root == tmp_path / "tiny" / "bridge"
    assert nemo2.teacher == nemo2.models / "Qwen3-tiny-nemo" and nemo2.pruned("depth").name == "Qwen3-tiny-nemo-depth-pruned"
    assert bridge.teacher == bridge.hf_teacher and bridge.pruned("depth").name == "Qwen3-tiny-depth-pruned"
    assert nemo2.hf_model("depth-pruned") == nemo2.exported("depth-pruned") and bridge.hf_model("depth-pruned") == bridge.pruned("depth")
    assert nemo2.data_prefix("train").name == "wikitext-train_text_document"


def test_run_streams_logs_and_raises_with_the_tail(tmp_path, capsys):
    script = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(CommandFailed) as failed:
        run([sys.executable, "-c", script], tmp_path / "logs" / "job.log", tail_lines=5)
    assert failed.value.returncode == 3
    assert failed.value.tail.splitlines() == [f"line {i}" for i in range(95, 100)]
    out = capsys.readouterr().out  # a line no rule of `cell_output` knows is in the log, not on screen
    assert "line 0" not in out and str(tmp_path / "logs" / "job.log") in out
    assert (tmp_path / "logs" / "job.log").read_text().count("\n") == 100


def test_run_works_in_the_log_folder_without_the_kernels_distributed_state(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("MASTER_PORT", "29500")
    log = tmp_path / "logs" / "job.log"
    run([sys.executable, "-c", "import os; print(os.getcwd(), os.environ.get('RANK'), os.environ.get('MASTER_PORT'))"], log)
    assert log.read_text().split() == [str(log.parent), "None", "None"]
    assert "RANK" not in child_env() and child_env()["PYTHONUNBUFFERED"] == "1" and os.environ["RANK"] == "3"


def test_a_child_of_a_torchrun_worker_does_not_inherit_its_rendezvous(monkeypatch):
    worker = {"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "0", "ROLE_RANK": "0",
              "GROUP_WORLD_SIZE": "1", "ROLE_WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}  # fmt: skip
    for key, value in worker.items():
        monkeypatch.setenv(key, value)
    assert set(worker) & set(child_env()) == {"OMP_NUM_THREADS"}  # a resource setting, not distributed state


def test_on_the_cpu_launched_processes_get_the_allocator_settings_and_on_a_gpu_nothing(monkeypatch):
    tunables = dict(item.split("=") for item in child_env()["GLIBC_TUNABLES"].split(":"))
    assert tunables["glibc.malloc.arena_max"] == "1" and tunables["glibc.malloc.mmap_max"] == "0"
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")
    assert child_env()["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=0"  # a setting of the user's own stays
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert "GLIBC_TUNABLES" not in child_env()


# In a session of its own at a lowered group priority, launch a command that reports its scheduling group.
NICED_LAUNCH = r"""
import os, sys
from pathlib import Path
from helpers.run.launch import run
os.setsid()
Path("/proc/self/autogroup").write_text("7")
child = "import os; print(os.getsid(0), open('/proc/self/autogroup').read().split()[-1])"
run([sys.executable, "-c", child], Path(sys.argv[1]))
session, nice = Path(sys.argv[1]).read_text().split()
print(int(session) != os.getsid(0), nice)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no autogroup scheduling on this kernel")
def test_a_launched_command_keeps_its_launchers_cpu_priority(tmp_path):
    from interpreters import run_together

    report = run_together({"launcher": ["-c", NICED_LAUNCH, str(tmp_path / "child.log")]})["launcher"].stdout.split()
    assert report[-2:] == ["True", "7"]  # a session (so a scheduling group) of its own, at the launcher's priority


def test_a_launcher_in_the_root_scheduling_group_reads_as_default_priority():
    from helpers.run.launch import group_nice

    assert group_nice("/autogroup-25 nice 7\n") == 7
    assert group_nice("") == os.nice(0)  # the root group (empty: a session never left init's, as in containers)


def test_an_output_being_written_is_refused_until_its_writer_ends(tmp_path):
    import subprocess

    from helpers.run.outputs import exclusive, require_not_running

    output = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", f"from pathlib import Path\nfrom helpers.run.outputs import exclusive\n"
                               f"with exclusive(Path({str(output)!r}), 'x'):\n    print('held', flush=True)\n    input()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(SettingError, match="--name: another process is still writing"):
        require_not_running(output, "--name")
    holder.kill()  # however the writer ends, its lock goes with it
    holder.wait()
    with exclusive(output, "--name"):
        with pytest.raises(SettingError):
            require_not_running(output, "--name")
    require_not_running(output, "--name")


def test_the_stack_is_imported_with_garbage_collection_paused_and_its_objects_frozen():
    import gc

    from helpers.run.stack import garbage_collection_paused, pause_garbage_collection

    try:
        pause_garbage_collection()  # an entry point, before its first import
        assert not gc.isenabled()
        with garbage_collection_paused():
            assert not gc.isenabled()
            made = [[index] for index in range(1000)]  # what an import leaves: objects that stay
        assert gc.isenabled() and gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()
        gc.enable()


def test_without_flock_an_owner_file_locks_and_a_dead_owner_is_taken_over(tmp_path, monkeypatch):
    """Shared storage of a cluster (NFS without lockd, Lustre without -o flock) fails flock(2) with ENOSYS/ENOLCK."""
    import errno
    import fcntl
    import socket
    import subprocess

    from helpers.run import outputs

    def no_flock(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    output, owner = tmp_path / "run", outputs.owner_path(tmp_path / "run")
    with outputs.exclusive(output, "--name"):
        assert owner.read_text() == f"{socket.gethostname()} {os.getpid()}"
        with pytest.raises(SettingError, match=f"--name: another process is still writing .*{owner.name}"):
            outputs.require_not_running(output, "--name")
    assert not owner.exists()  # released with the block

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True).stdout.strip()
    owner.write_text(f"{socket.gethostname()} {gone}")  # a killed writer on this host: stale
    outputs.require_not_running(output, "--name")
    owner.write_text(f"node-7 {os.getpid()}")  # another host: cannot be checked from here
    with pytest.raises(SettingError, match=f"(?s)wait for node-7:{os.getpid()} to finish; if that process is gone, delete {owner}"):
        outputs.require_not_running(output, "--name")


def test_other_flock_errors_are_not_taken_for_a_missing_lock_service(tmp_path, monkeypatch):
    import errno
    import fcntl

    from helpers.run import outputs

    def bad_descriptor(handle, operation):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", bad_descriptor)
    with pytest.raises(OSError, match="Bad file descriptor"):
        outputs.require_not_running(tmp_path / "run", "--name")


def test_notebook_04_hands_the_gpu_memory_of_its_speed_models_back_before_mmlu(monkeypatch, tmp_path):
    """MMLU's accelerate processes start right after, on every GPU: the kernel must not keep GPU 0's cached blocks."""
    import torch

    from helpers.evaluate import comparison, speed

    freed = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append("empty_cache"))
    monkeypatch.setattr(comparison, "hf_checkpoints", lambda ws: {})

    def measurement_fails(models, reference, settings):
        assert not freed  # the models are still in use while measured
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(speed, "measure", measurement_fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        comparison.measure_speed(Workspace(tmp_path, "Qwen3-tiny"), settings=None)
    assert freed == ["empty_cache"]  # a failed measurement too
