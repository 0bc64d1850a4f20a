"""The commands the notebooks, the README and the reference's users run keep their names and flags."""

import subprocess
import sys

import pytest

ENTRY_POINTS = {
    "helpers.prune": "--target_num_layers", "helpers.distill": "--teacher_path", "helpers.conversion": "--report",
    "helpers.nemo_model": "--checkpoint", "helpers.prune.resave": "source", "helpers.evaluate.speed": "--rounds",
    "helpers.series": "--dry-run",
}  # fmt: skip


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """`python -m <module> --help` of every entry point, the interpreters started together."""
    running = {module: subprocess.Popen([sys.executable, "-m", module, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for module in ENTRY_POINTS}
    done = {module: process.communicate(timeout=300) for module, process in running.items()}
    return {module: subprocess.CompletedProcess(running[module].args, running[module].returncode, *output) for module, output in done.items()}


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_each_entry_point_runs_as_a_module_with_its_flags(helps, module):
    result = helps[module]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m {module} ") and ENTRY_POINTS[module] in result.stdout
