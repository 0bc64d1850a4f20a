"""Idempotent steps: reuse a valid output, rebuild on request, never leave anything half-written."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def remove(path: Path) -> None:
    """Delete a file, a link or a folder tree; nothing if it is absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def partial_path(final: Path) -> Path:
    """The hidden sibling an output is written to before it is moved into place."""
    return final.with_name(f".{final.name}.partial")


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `final` to write into; it replaces `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(final)
    remove(partial)
    try:
        yield partial
    except BaseException:
        remove(partial)
        raise
    replaced = final.with_name(f".{final.name}.replaced")
    remove(replaced)
    if final.exists() or final.is_symlink():
        final.rename(replaced)
    partial.rename(final)
    remove(replaced)


def produce(
    output: Path,
    build: Callable[[Path], object],
    *,
    is_valid: Callable[[Path], bool],
    overwrite: bool = False,
    what: str = "output",
) -> Path:
    """Make `output` with `build(temporary_path)` unless a valid one exists (or `overwrite` is set).

    The build writes to a temporary sibling that is moved into place when it succeeds, so an
    interrupted build leaves the previous output (or nothing) behind.
    """
    if not overwrite and is_valid(output):
        print(f"Reusing the {what} at {output} (set OVERWRITE = True to rebuild it).")
        return output
    if output.exists() and not overwrite:
        print(f"The {what} at {output} is incomplete; rebuilding it.")
    with atomic_output(output) as partial:
        build(partial)
        if not is_valid(partial):
            raise RuntimeError(f"building the {what} finished but {partial} is not a valid {what}")
    print(f"Wrote the {what} to {output}.")
    return output
