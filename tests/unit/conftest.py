import dataclasses

import pytest

from archs import QWEN3
from fakes import megatron_data, nemo_checkpoint

TINY = dataclasses.replace(QWEN3["tiny"], vocab_size=1024)  # the tiny Qwen3's shapes, a small vocabulary


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """A teacher with the tiny Qwen3's shapes, a depth-pruned student, and tokenized data."""
    root = tmp_path_factory.mktemp("models")
    return {
        "teacher": nemo_checkpoint(root / "teacher", TINY),
        "student": nemo_checkpoint(root / "student", dataclasses.replace(TINY, num_layers=4)),
        "data": megatron_data(root / "data" / "wikitext-train_text_document"),
    }
