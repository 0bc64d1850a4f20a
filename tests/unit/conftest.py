import dataclasses

import pytest
from fakes import TINY, megatron_data, nemo_checkpoint


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A teacher with the tiny Qwen3's shapes, a depth-pruned student, and tokenized data."""
    root = tmp_path_factory.mktemp("models")
    return {
        "teacher": nemo_checkpoint(root / "teacher", TINY),
        "student": nemo_checkpoint(root / "student", dataclasses.replace(TINY, num_layers=4)),
        "data": megatron_data(root / "data" / "wikitext-train_text_document"),
    }
