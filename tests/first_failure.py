"""A pytest plugin for the series: the first failing notebook cell leads the report."""

from __future__ import annotations

import pytest


class FirstFailureFirst:
    """Once a notebook cell fails, skip what depends on it: the later cells, notebooks and series checks.

    The notebooks run in order and each reads what the previous ones wrote, so after one failed cell
    every later one would fail too (NameError, missing checkpoint) and bury the cause. The report
    leads with the one real error; each skipped item names it.
    """

    def __init__(self):
        self.failed: str | None = None

    @staticmethod
    def depends_on_notebooks(nodeid: str) -> bool:
        """A notebook cell, or a series check that reads what the notebooks wrote."""
        return nodeid.endswith(".ipynb") or ".ipynb::" in nodeid or nodeid.startswith("tests/series/")

    def pytest_runtest_setup(self, item):
        if self.failed and self.depends_on_notebooks(item.nodeid):
            pytest.skip(f"{self.failed} failed first: see its error")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed and self.failed is None and ".ipynb::" in item.nodeid:
            self.failed = item.nodeid
        return report
