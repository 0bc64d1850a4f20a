"""The commands the notebooks, the README and the reference's users run keep their names and flags."""

import subprocess

import pytest
from interpreters import run_together

ENTRY_POINTS = {
    "helpers.prune": "--target_num_layers", "helpers.distill": "--teacher_path", "helpers.conversion": "--report",
    "helpers.evaluate.losses": "--checkpoint", "helpers.prune.resave": "source", "helpers.evaluate.speed": "--rounds",
    "helpers.series": "--dry-run", "helpers.prune.scores": "--prune_score_func", "helpers.quantize": "--qformat",
}  # fmt: skip


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """`python -m <module> --help` of every entry point, the interpreters started together."""
    return run_together({module: ("-m", module, "--help") for module in ENTRY_POINTS}, timeout=300, check=False)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_each_entry_point_runs_as_a_module_with_its_flags(helps, module):
    result = helps[module]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m {module} ") and ENTRY_POINTS[module] in result.stdout
