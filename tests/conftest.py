"""Every test session runs offline, on the tiny profile, in a work directory of its own.

The notebooks (executed by nbval in kernels that inherit this environment) and the checks in
tests/series share that directory: the checks read what the notebooks produced. To check an
existing work directory instead, set TUTORIAL_TEST_WORKDIR to it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from first_failure import FirstFailureFirst

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def pytest_configure(config):
    workdir = os.environ.get("TUTORIAL_TEST_WORKDIR") or tempfile.mkdtemp(prefix="tutorial-tests-")
    home = Path(workdir) / "hf-home"
    os.environ.update(OFFLINE, TUTORIAL_PROFILE="tiny", TUTORIAL_WORKDIR=workdir, HF_HOME=str(home), MPLBACKEND="Agg")
    config.pluginmanager.register(FirstFailureFirst(), "first-failure-first")


def pytest_report_header(config):
    return f"work directory: {os.environ['TUTORIAL_WORKDIR']}"
