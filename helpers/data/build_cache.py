"""Built assets kept once per machine: a new work directory reuses the tiny teacher instead of training it again.

What a build produces is fixed by its recipe (for the tiny teacher: the architecture and training settings,
the corpus, the tokenizer, the code that trains it, the library versions and the dtype it computes in),
so the entry is named by a hash of that recipe and any change builds a new one, as a Hub download is
keyed by its revision. An entry is written to a temporary folder and renamed into place with a manifest
of its files' SHA-256 sums, which are checked before every reuse: a damaged entry is built again.

The cache lives in $TUTORIAL_CACHE if set, else $XDG_CACHE_HOME (default ~/.cache)/pruning-distillation-tutorial;
TUTORIAL_CACHE=off turns it off (every work directory then builds its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "TUTORIAL_CACHE"
MANIFEST = "cache-manifest.json"


def cache_root() -> Path | None:
    """Where entries live, or None when the cache is turned off."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pruning-distillation-tutorial"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_key(recipe: dict) -> str:
    """A short, stable name for a recipe (a JSON-serialisable dict)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def _manifest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): file_sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def _intact(entry: Path) -> bool:
    try:
        recorded = json.loads((entry / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = {k: v for k, v in _manifest(entry).items() if k != MANIFEST}
    return files == recorded


def _copy_files(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file() and path.name != MANIFEST:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


def _store(built: Path, root: Path, key: str) -> None:
    """Copy `built` into the cache as entry `key`, atomically; a concurrent writer of the same key wins."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        _copy_files(built, staging)
        (staging / MANIFEST).write_text(json.dumps(_manifest(staging), indent=1))
        entry = root / key
        if entry.exists():
            shutil.rmtree(entry)  # damaged (else it would have been reused) or rebuilt on request
        staging.rename(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reuse_or_build(recipe: dict, build: Callable[[Path], object], out: Path, *, what: str, rebuild: bool = False) -> None:
    """Fill `out` (an empty folder) from the cache entry of `recipe`, or with `build(out)`, then cache what it built.

    `rebuild` builds even when an intact entry exists, and replaces it.
    """
    root = cache_root()
    if root is None:
        build(out)
        return
    key = recipe_key(recipe)
    entry = root / key
    if not rebuild and _intact(entry):
        _copy_files(entry, out)
        print(f"Reusing the {what} built earlier on this machine ({entry}; {CACHE_ENV}=off or OVERWRITE = True builds it again).")
        return
    build(out)
    _store(out, root, key)
