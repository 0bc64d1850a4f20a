"""Checks of what the notebooks produced; they run after nbval has executed the four notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.evaluate import comparison
from helpers.profiles import get_profile
from helpers.routes import get_route
from helpers.workspace import open_workspace


@pytest.fixture(scope="session")
def profile():
    return get_profile("tiny")


@pytest.fixture(scope="session")
def route():
    """The route the notebooks ran on: $TUTORIAL_ROUTE (`make test` runs the series once per route)."""
    return get_route()


@pytest.fixture(scope="session")
def ws(profile, route):
    return open_workspace(profile.name, profile.model.name, route=route.name)


def _required(path: Path, notebook: str) -> Path:
    if not (path.exists() or path.is_symlink()):
        pytest.fail(f"{path} is missing: notebook {notebook} has not run in this work directory (`make test` runs all four first)")
    return path


@pytest.fixture
def require():
    """Fail, saying which notebook to run, if an artifact is missing."""
    return _required


@pytest.fixture(scope="session")
def results(ws):
    """Notebook 04's saved comparison (`comparison.load`)."""
    _required(ws.results / f"{comparison.RESULTS}.json", "04")
    return comparison.load(ws)


@pytest.fixture(scope="session")
def nemo2_only(route):
    """For a check of what only NeMo 2's route does (its conversions, its run layout): skipped on the other route."""
    if route.name != "nemo2":
        pytest.skip(f"checks NeMo 2's route; the {route.name} route's equivalent is in tests/{route.name}/")
