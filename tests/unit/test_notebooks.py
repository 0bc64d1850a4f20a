"""The committed notebooks: no outputs, a `parameters` cell, and code that calls `helpers`."""

from pathlib import Path

import nbformat
import pytest

from helpers.series import NOTEBOOKS, REPOSITORY


def test_the_series_is_the_four_notebooks_at_the_root():
    assert sorted(p.name for p in REPOSITORY.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = nbformat.read(Path(REPOSITORY, name), as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), f"{name} carries outputs"
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "PROFILE" in parameters[0].source and "WORKDIR" in parameters[0].source
    assert not any(line.lstrip().startswith("!") for cell in code for line in cell.source.splitlines()), "`!cmd` hides failures"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
