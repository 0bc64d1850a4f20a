"""The tokenized data both launch steps read: `--data_paths` prefixes, their blending weights, their files."""

from __future__ import annotations

from pathlib import Path

from helpers.errors import Problem, flag


def data_prefixes(data_paths: list[str]) -> list[str]:
    """The dataset prefixes of `--data_paths`, which may interleave blending weights: `30 a 70 b`."""

    def is_number(value: str) -> bool:
        try:
            float(value)
            return True
        except ValueError:
            return False

    weighted = len(data_paths) % 2 == 0 and all(is_number(v) for v in data_paths[::2])
    return data_paths[1::2] if weighted else list(data_paths)


def missing_datasets(data_paths: list[str] | None) -> tuple[str, ...]:
    """The prefixes of `--data_paths` whose .bin or .idx file does not exist."""
    return tuple(p for p in data_prefixes(data_paths or []) if not (Path(f"{p}.bin").is_file() and Path(f"{p}.idx").is_file()))


def missing_data(prefix: str) -> Problem:
    return Problem(flag("data_paths"), f"{prefix}.bin / .idx not found", "give a prefix written by the tokenization step (without .bin)")
