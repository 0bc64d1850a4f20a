"""Idempotent steps: reuse a valid output, rebuild on request, never leave anything half-written."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
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


# flock(2) where the filesystem has no lock service: a cluster's NFS without lockd (ENOLCK), Lustre mounted
# without `-o flock` and some FUSE filesystems (ENOSYS), others (EOPNOTSUPP).
NO_FLOCK = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP}


@contextmanager
def exclusive(output: Path, setting: str) -> Iterator[None]:
    """Hold the lock on `output` for the block; refuse if another process holds it.

    The operating system releases the lock when its process ends, however it ends, so a stale
    lock never blocks a rerun; a live one means a run is still going (a kernel restart does not
    stop the torchrun it launched), and a second writer would corrupt its output. On a filesystem
    without flock (shared storage of a cluster, often) an owner file takes its place (`_owner_file`).
    """
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            raise _still_writing(output, setting, path) from None
        except OSError as error:
            if error.errno not in NO_FLOCK:
                raise
            locked = False
        if locked:
            yield
            return
    with _owner_file(output, setting):
        yield


def _still_writing(output: Path, setting: str, holder: Path, fix: str = "") -> Exception:
    return refuse(
        setting,
        f"another process is still writing {output} (it holds {holder})",
        fix or "wait for it to finish, or stop it (pkill -f helpers.) and run again",
    )


@contextmanager
def _owner_file(output: Path, setting: str) -> Iterator[None]:
    """The lock where flock fails: a file created only if absent (O_EXCL, atomic on NFS too) naming its owner.

    Unlike flock it outlives a killed owner. One on this host whose process is gone is stale and taken over;
    one from another host cannot be checked from here, so the refusal says how to remove it.
    """
    owner, me = owner_path(output), f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            descriptor = os.open(owner, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            host, _, pid = owner.read_text().partition(" ")
            if host != socket.gethostname() or _alive(int(pid or 0)):
                raise _still_writing(output, setting, owner, f"wait for {host}:{pid} to finish; if that process is gone, delete {owner}") from None
            owner.unlink(missing_ok=True)  # stale: its process on this host has ended
    else:
        raise _still_writing(output, setting, owner)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(me)
    try:
        yield
    finally:
        owner.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def owner_path(output: Path) -> Path:
    """The hidden sibling that names the process writing `output` where the filesystem has no flock."""
    return output.with_name(f".{output.name}.owner")


def require_not_running(output: Path, setting: str) -> None:
    """Refuse, before any work, if a process is writing `output`."""
    with exclusive(output, setting):
        pass
