"""Idempotent steps: reuse a valid output, rebuild on request, never leave anything half-written."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.errors import refuse


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


def lock_path(output: Path) -> Path:
    """The hidden sibling whose lock marks `output` as being written by a running process."""
    return output.with_name(f".{output.name}.lock")


@contextmanager
def exclusive(output: Path, setting: str) -> Iterator[None]:
    """Hold the lock on `output` for the block; refuse if another process holds it.

    The operating system releases the lock when its process ends, however it ends, so a stale
    lock never blocks a rerun; a live one means a run is still going (a kernel restart does not
    stop the torchrun it launched), and a second writer would corrupt its output.
    """
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refuse(
                setting,
                f"another process is still writing {output} (it holds {path})",
                "wait for it to finish, or stop it (pkill -f helpers.) and run again",
            ) from None
        yield


def require_not_running(output: Path, setting: str) -> None:
    """Refuse, before any work, if a process is writing `output`."""
    with exclusive(output, setting):
        pass
