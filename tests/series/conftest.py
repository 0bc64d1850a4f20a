"""Checks of what the notebooks produced; they run after nbval has executed the four notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.profiles import get_profile
from helpers.workspace import open_workspace


@pytest.fixture(scope="session")
def profile():
    return get_profile("tiny")


@pytest.fixture(scope="session")
def ws(profile):
    return open_workspace(profile.name, profile.model.name)


@pytest.fixture
def require():
    """Fail, saying which notebook to run, if an artifact is missing."""

    def check(path: Path, notebook: str) -> Path:
        if not (path.exists() or path.is_symlink()):
            pytest.fail(f"{path} is missing: notebook {notebook} has not run in this work directory (`make test` runs all four first)")
        return path

    return check


def run_python(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter (NeMo needs a process of its own); fail with its output if it fails."""
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result
