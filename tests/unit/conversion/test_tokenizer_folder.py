"""An imported checkpoint holds its own tokenizer and nothing an earlier import left behind.

NeMo's importers save every tokenizer to one shared folder that nothing empties (see
`helpers.conversion.steps.own_tokenizer_folder`); the `small_nemo` models are imported while it holds
a stale file.
"""

from small_qwen3 import STALE_FILE
from transformers import AutoTokenizer

from helpers.models.checkpoints import tokenizer_dir


def test_an_imported_checkpoint_holds_only_its_own_tokenizer_files(small_nemo, tmp_path):
    for checkpoint in (small_nemo.teacher, small_nemo.pruned("depth")):
        source = small_nemo.root / "hf" / checkpoint.name
        AutoTokenizer.from_pretrained(source).save_pretrained(tmp_path / checkpoint.name)  # what the importer saves
        expected = {path.name for path in (tmp_path / checkpoint.name).iterdir()}
        copied = {path.name for path in tokenizer_dir(checkpoint).iterdir()}
        assert STALE_FILE not in copied and copied == expected, checkpoint
        for name in expected:
            assert (tokenizer_dir(checkpoint) / name).read_bytes() == (tmp_path / checkpoint.name / name).read_bytes(), name
