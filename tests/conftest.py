"""Every test session runs offline, on the tiny profile, in a work directory of its own.

The notebooks (executed by nbval in kernels that inherit this environment) and the checks in
tests/series share that directory: the checks read what the notebooks produced. To check an
existing work directory instead, set TUTORIAL_TEST_WORKDIR to it. A session's own directory (several
GB of checkpoints) is removed when every test passed, and kept for inspection when one did not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from first_failure import FirstFailureFirst

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def pytest_configure(config):
    given = os.environ.get("TUTORIAL_TEST_WORKDIR")
    workdir = given or tempfile.mkdtemp(prefix="tutorial-tests-")
    config.own_workdir = None if given else Path(workdir)
    home = Path(workdir) / "hf-home"
    os.environ.update(OFFLINE, TUTORIAL_PROFILE="tiny", TUTORIAL_WORKDIR=workdir, HF_HOME=str(home), MPLBACKEND="Agg")
    config.pluginmanager.register(FirstFailureFirst(), "first-failure-first")


def pytest_report_header(config):
    return f"work directory: {os.environ['TUTORIAL_WORKDIR']}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    own = config.own_workdir
    if own is None:
        return
    if exitstatus == 0:
        shutil.rmtree(own)
        terminalreporter.write_line(f"work directory removed: {own}")
    else:
        terminalreporter.write_line(f"work directory kept for inspection: {own}")
