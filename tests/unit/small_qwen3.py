"""Small real Qwen3s imported into NeMo 2, with data: for tests of the NeMo entry points that need no notebook."""

import contextlib

import numpy as np

from helpers.conversion.steps import shared_tokenizer_folder
from helpers.run.launch import python_module, run
from helpers.workspace import Workspace

VOCABULARY = 512


def word_tokenizer(path):
    """A Hugging Face tokenizer of VOCABULARY words ("w0" ... ), the first one marking the end of a text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = models.WordLevel({f"w{i}": i for i in range(VOCABULARY)}, unk_token="w1")
    tokenizer = Tokenizer(words)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="w0", unk_token="w1").save_pretrained(path)
    return path


def small_qwen3(path, tokenizer, layers: int):
    """A small Qwen3 (head_dim 128, as NeMo's importer expects) with random weights, and its tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(layers)
    config = Qwen3Config(vocab_size=VOCABULARY, hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=128, tie_word_embeddings=False)  # fmt: skip
    Qwen3ForCausalLM(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(path)
    return path


def random_documents(prefix, documents: int = 200, length: int = 100):
    """A tokenized dataset (.bin/.idx) of random word ids: enough documents for a 1% validation split."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix.parent.mkdir(parents=True, exist_ok=True)
    builder = IndexedDatasetBuilder(str(prefix.with_suffix(".bin")), dtype=np.int32)
    for document in np.random.default_rng(0).integers(1, VOCABULARY, size=(documents, length)):
        builder.add_document(document.tolist(), [length])
    builder.finalize(str(prefix.with_suffix(".idx")))


STALE_FILE = "left-by-an-earlier-import.jinja"


@contextlib.contextmanager
def stale_file_in_nemos_tokenizer_folder():
    """A file in the folder where NeMo's importers save tokenizers by default, as another import would leave one."""
    shared = shared_tokenizer_folder()
    shared.mkdir(parents=True, exist_ok=True)
    (shared / STALE_FILE).write_text("{{ 'not this model' }}")
    try:
        yield
    finally:
        (shared / STALE_FILE).unlink(missing_ok=True)


def nemo_workspace(root) -> Workspace:
    """A work directory holding a 2-layer teacher and a 1-layer 'depth-pruned' student in NeMo, and data.

    They are imported while NeMo's shared tokenizer folder holds a file of another import's (tests/unit/conversion).
    """
    ws = Workspace(root=root, model_name="Qwen3-small")
    tokenizer = word_tokenizer(root / "tokenizer")
    imports = []
    for layers, output in ((2, ws.teacher), (1, ws.pruned("depth"))):
        source = small_qwen3(root / "hf" / output.name, tokenizer, layers)
        imports += ["--source", source, "--output", output, "--report", root / "reports" / f"{output.name}.json"]
    with stale_file_in_nemos_tokenizer_folder():
        run(python_module("helpers.conversion", "import", *imports), root / "import.log")
    random_documents(ws.data_prefix("train"))
    return ws
