"""WikiText -> JSONL -> Megatron's tokenized .bin/.idx files, and what is in them.

Megatron-Core reads pretraining data as an indexed dataset: `<prefix>.bin` holds every token id
back to back and `<prefix>.idx` where each document starts. The files written here are the ones
ModelOpt's `megatron_preprocess_data` (the reference tutorial's route) writes, built with the same
`IndexedDatasetBuilder`, with a progress bar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.run.outputs import partial_path, produce, remove
from helpers.run.stack import megatron_local_files
from helpers.workspace import SPLITS, Workspace


def write_jsonl(rows, path: Path, label: str = "rows") -> None:
    """One `{"text": ...}` object per line for every non-blank row (blank rows carry no tokens)."""
    from tqdm.auto import tqdm

    with path.open("w", encoding="utf-8") as out:
        for row in tqdm(rows, desc=f"writing {label}", unit=" rows", mininterval=1.0):
            if row["text"].strip():
                out.write(json.dumps({"text": row["text"]}, ensure_ascii=False) + "\n")


def prepare_jsonl(dataset, ws: Workspace, overwrite: bool = False) -> dict[str, Path]:
    """Each split of the `datasets.DatasetDict` as JSONL in the workspace."""
    return {
        split: produce(
            ws.jsonl(split), lambda partial, s=split: write_jsonl(dataset[s], partial, f"{s} JSONL"), is_valid=Path.is_file, overwrite=overwrite, what=f"{split} JSONL"
        )
        for split in SPLITS
    }


def is_megatron_dataset(prefix: Path) -> bool:
    if not (prefix.with_suffix(".bin").is_file() and prefix.with_suffix(".idx").is_file()):
        return False
    try:
        dataset = _indexed(prefix)
        return len(dataset) > 0
    except Exception:  # a truncated or foreign file
        return False


def tokenize_jsonl(jsonl: Path, prefix: Path, tokenizer_dir: Path, batch_size: int = 1000) -> None:
    """Tokenize every document of `jsonl` (no end-of-document token, as the reference) into `prefix`.bin/.idx."""
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    megatron_local_files()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    builder = IndexedDatasetBuilder(str(prefix.with_suffix(".bin")), dtype=DType.optimal_dtype(len(tokenizer)))
    with jsonl.open(encoding="utf-8") as lines:
        total = sum(1 for _ in lines)
    with jsonl.open(encoding="utf-8") as lines, tqdm(total=total, desc=f"tokenizing {jsonl.name}", unit=" docs") as bar:
        batch: list[str] = []
        for line in lines:
            batch.append(json.loads(line)["text"])
            if len(batch) == batch_size:
                _add(builder, tokenizer, batch)
                bar.update(len(batch))
                batch = []
        _add(builder, tokenizer, batch)
        bar.update(len(batch))
    builder.finalize(str(prefix.with_suffix(".idx")))


def _add(builder, tokenizer, texts: list[str]) -> None:
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []:
        if ids:
            builder.add_document(ids, [len(ids)])


def prepare_megatron_data(ws: Workspace, tokenizer_dir: Path, batch_size: int = 1000, overwrite: bool = False) -> dict[str, Path]:
    """Tokenize each split's JSONL into a Megatron dataset; reuse valid ones unless `overwrite`."""
    prefixes = {}
    for split in SPLITS:
        prefix = ws.data_prefix(split)
        if not overwrite and is_megatron_dataset(prefix):
            print(f"Reusing the tokenized {split} split at {prefix}.{{bin,idx}}.")
        else:
            partial = partial_path(prefix)
            try:
                tokenize_jsonl(ws.jsonl(split), partial, tokenizer_dir, batch_size)
            except BaseException:
                for suffix in (".bin", ".idx"):
                    remove(partial.with_suffix(suffix))
                raise
            partial.with_suffix(".bin").replace(prefix.with_suffix(".bin"))
            partial.with_suffix(".idx").replace(prefix.with_suffix(".idx"))  # last: marks the pair complete
        prefixes[split] = prefix
    return prefixes


def _indexed(prefix: Path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    megatron_local_files()
    return IndexedDataset(str(prefix))


def document_lengths(prefix: Path) -> np.ndarray:
    """Tokens in each document of the dataset."""
    dataset = _indexed(prefix)  # memory-mapped: copy out while it is open, its __del__ unmaps the files
    return np.array(dataset.sequence_lengths, dtype=np.int64)


@dataclass(frozen=True)
class SplitStats:
    documents: int
    tokens: int
    mean_length: int
    median_length: int
    max_length: int


def first_document_with(prefix: Path, min_tokens: int) -> int:
    """Index of the first document with at least `min_tokens` tokens."""
    return int(np.argmax(document_lengths(prefix) >= min_tokens))


def split_stats(prefix: Path) -> SplitStats:
    lengths = document_lengths(prefix)
    return SplitStats(
        documents=len(lengths),
        tokens=int(lengths.sum()),
        mean_length=round(float(lengths.mean())),
        median_length=round(float(np.median(lengths))),
        max_length=int(lengths.max()),
    )


def read_document(prefix: Path, index: int) -> np.ndarray:
    """The token ids of document `index`, read back from the .bin/.idx pair."""
    dataset = _indexed(prefix)
    return np.array(dataset[index], dtype=np.int64)


def token_windows(prefix: Path, length: int, count: int) -> np.ndarray:
    """Up to `count` windows of `length` tokens from the start of the split, documents back to back as Megatron
    packs them: all the split holds if that is fewer (a split too short for even one window is an error)."""
    dataset, tokens, needed = _indexed(prefix), [], length * count
    for index in range(len(dataset)):
        tokens.extend(dataset[index].tolist())
        if len(tokens) >= needed:
            break
    available = min(count, len(tokens) // length)
    if available == 0:
        raise ValueError(f"{prefix} holds {len(tokens)} tokens, less than one window of {length}")
    if available < count:
        print(f"{prefix.name} holds {len(tokens):,} tokens: {available} windows of {length}, not {count}")
    return np.array(tokens[: available * length], dtype=np.int64).reshape(available, length)


def jsonl_document(jsonl: Path, index: int) -> str:
    with jsonl.open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i == index:
                return json.loads(line)["text"]
    raise IndexError(f"{jsonl} has fewer than {index + 1} documents")
