import dataclasses

import pytest
from fakes import TINY, megatron_data, nemo_checkpoint
from small_qwen3 import nemo_workspace


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A teacher with the tiny Qwen3's shapes, a depth-pruned student, and tokenized data."""
    root = tmp_path_factory.mktemp("models")
    return {
        "teacher": nemo_checkpoint(root / "teacher", TINY),
        "student": nemo_checkpoint(root / "student", dataclasses.replace(TINY, num_layers=4)),
        "data": megatron_data(root / "data" / "wikitext-train_text_document"),
    }


@pytest.fixture(scope="session")
def small_nemo(tmp_path_factory):
    """Two small real Qwen3s imported into NeMo (teacher and depth-pruned student) and data, in a Workspace."""
    return nemo_workspace(tmp_path_factory.mktemp("small-nemo"))
