"""Every test session runs offline, on the tiny profile, in a work directory of its own.

The notebooks (executed by nbval in kernels that inherit this environment) and the checks in
tests/series share that directory: the checks read what the notebooks produced. To check an
existing work directory instead, set TUTORIAL_TEST_WORKDIR to it. A session's own directory (several
GB of checkpoints) is removed when every test passed, and kept for inspection when one did not.

With pytest-xdist (`make test` runs `-n 2`) the notebooks and their checks are one scope, run in order
by one worker (the largest scope goes first), while the other worker takes the unit tests and the real
model's import, a module at a time; workers inherit the controller's environment, so all share its work
directory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from first_failure import FirstFailureFirst

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
SERIES = "series"  # the xdist scope of the notebooks and of the checks that read what they wrote


def pytest_configure(config):
    given = os.environ.get("TUTORIAL_TEST_WORKDIR")
    workdir = given or tempfile.mkdtemp(prefix="tutorial-tests-")
    config.own_workdir = None if given else Path(workdir)
    home = Path(workdir) / "hf-home"
    os.environ.update(OFFLINE, TUTORIAL_PROFILE="tiny", TUTORIAL_WORKDIR=workdir, HF_HOME=str(home), MPLBACKEND="Agg")
    os.environ["TUTORIAL_TEST_WORKDIR"] = workdir  # xdist workers, started later, inherit it: the controller removes it
    config.pluginmanager.register(FirstFailureFirst(), "first-failure-first")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduling by scope, where a scope is the series or a test module (whose fixtures it shares)."""
    from xdist.scheduler import LoadScopeScheduling

    class SeriesOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SERIES if FirstFailureFirst.depends_on_notebooks(nodeid) else nodeid.split("::")[0]

    return SeriesOnOneWorker(config, log)


def pytest_runtest_setup(item):
    if os.environ.get("PYTEST_XDIST_WORKER") and not FirstFailureFirst.depends_on_notebooks(item.nodeid):
        yield_to_the_series()


@functools.cache
def yield_to_the_series() -> None:
    """Lower this worker's CPU priority, and that of everything it starts, below the series' (sched(7)).

    The series' steps run multi-threaded; a test competing at equal weight slows a step it shares a core
    with ~3.5x (the tiny teacher's training: 27 s alone, 95 s beside one busy process, 31 s beside one at
    the lowest priority). With autogroup scheduling the group's nice is what counts, so the worker first
    leaves the terminal's session for a group of its own; `launch.run` passes that priority on.
    """
    with contextlib.suppress(OSError):
        os.setsid()
    os.nice(19 - os.nice(0))
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text("19")


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
