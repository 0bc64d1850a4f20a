"""Launch mechanics: rank 0's clean-up before any other rank looks, clamped test windows, failures reported first."""

import subprocess
import sys
import textwrap

import pytest

# Rank 0 removes the old run slowly; every rank then reports what it sees. Without the rendezvous
# in `helpers.distill.cli.prepare`, rank 1 would look while the old run is still there.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from helpers.distill import cli

    log_dir = Path(sys.argv[1])
    args = cli.parser().parse_args(["--name", "run", "--model_path", "s", "--teacher_path", "t", "--log_dir", str(log_dir),
                                        "--max_steps", "4", "--gbs", "4", "--mbs", "2", "--seq_length", "8", "--overwrite"])
    remove = cli.remove
    cli.remove = lambda path: (time.sleep(3), remove(path))
    cli.prepare(args)
    print(f"rank {os.environ['RANK']}: old run present {(log_dir / 'run' / 'old-checkpoint').exists()}, "
          f"settings recorded {(log_dir / 'run' / cli.runs.SETTINGS).exists()}", flush=True)
    """
)


def test_other_ranks_wait_for_rank0s_clean_up(tmp_path):
    (tmp_path / "logs" / "run" / "old-checkpoint").mkdir(parents=True)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}: old run present False, settings recorded True" in result.stdout


def test_test_windows_are_clamped_to_what_the_split_holds(tmp_path, capsys):
    from fakes import megatron_data

    from helpers.data.indexed import token_windows

    prefix = megatron_data(tmp_path / "test_text_document")  # 10 documents of 40 tokens
    windows = token_windows(prefix, 64, 10)
    assert windows.shape == (6, 64) and windows.ravel().tolist() == list(range(384))
    assert "holds 400 tokens: 6 windows of 64, not 10" in capsys.readouterr().out
    assert token_windows(prefix, 40, 3).shape == (3, 40)
    with pytest.raises(ValueError, match="less than one window of 500"):
        token_windows(prefix, 500, 1)


class _Item:
    def __init__(self, nodeid):
        self.nodeid = nodeid


def test_after_a_failed_cell_the_notebooks_and_checks_after_it_are_skipped():
    from first_failure import FirstFailureFirst

    plugin, cell = FirstFailureFirst(), "01_model_and_data_preparation.ipynb::Cell 2"
    report = type("Report", (), {"failed": True})()
    hook = plugin.pytest_runtest_makereport(_Item(cell), None)
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(report)
    for later in ("01_model_and_data_preparation.ipynb::Cell 3", "03_distillation.ipynb::Cell 0", "tests/series/test_pruning.py::test_x"):
        with pytest.raises(pytest.skip.Exception, match="01_model_and_data_preparation.ipynb::Cell 2 failed first"):
            plugin.pytest_runtest_setup(_Item(later))
    plugin.pytest_runtest_setup(_Item("tests/unit/test_launch.py::test_y"))  # unit tests do not depend on notebooks
