"""The files fastbp reads and writes: paths, opening for reading, and the one
atomic writer that every file fastbp writes goes through (model files, FANN
and ONNX files, the command line's predictions, datasets and plots).

Atomic: the content goes to a new temporary file in the target's directory,
is flushed and fsynced, then renamed over the target, and the directory is
fsynced (where the platform allows it) so that the rename is durable too.  A
crash, a full disk or a ``KeyboardInterrupt`` while writing leaves either the
previous file or the new one, never a mix, and no temporary file.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from typing import IO, Any


class _BadFile(Exception):
    """What is wrong with a file's content (and, for a text format such as
    FANN's, the line); the public functions turn it into a ``ValueError``
    that names the file."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _show(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(path: object) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {_show(path)} of type {type(path).__name__}")
    return os.fsdecode(os.fspath(path))


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------


def _open_regular_file(path: str, what: str) -> io.BufferedReader:
    """``path`` opened for binary reading; a ``ValueError`` naming ``what`` for
    what is not a regular file.  O_NONBLOCK: opening a FIFO must not wait for
    a writer; it is refused below."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ValueError(f"{what} {path!r}: it is {kind}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ----------------------------------------------------------------------------
# Writing, atomically
# ----------------------------------------------------------------------------


def _write_atomically(path: str, chunks: Iterable[Any]) -> None:
    """Write the bytes-like ``chunks``, in order, to ``path`` atomically."""
    with _atomic_file(path) as f:
        _write_chunks(f, chunks)


@contextlib.contextmanager
def _atomic_file(path: str) -> Iterator[IO[bytes]]:
    """A new binary file to write ``path``'s content to; it replaces ``path``
    only when the block completes, and is removed if the block fails.

    A new file gets the permissions ``open`` would give it; an existing file
    keeps its permission bits.  A symlink at ``path`` is replaced, not
    followed."""
    directory = os.path.dirname(path) or os.curdir
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save to {path!r}: the directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory")
    try:
        previous_mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        previous_mode = None
    temp, fd = _create_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if previous_mode is not None:
            os.chmod(temp, previous_mode)
        os.replace(temp, path)
    except BaseException:  # including KeyboardInterrupt: never leave the temporary file behind
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _create_temp(directory: str, name: str) -> tuple[str, int]:
    """A new, empty file next to the target, created with O_EXCL (like
    ``tempfile.mkstemp``) but with the default permissions (0o666 less the
    umask), which ``os.replace`` then gives the target."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(directory, f".{name[:100]}.{secrets.token_hex(8)}.tmp")
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def _write_chunks(f: IO[bytes], chunks: Iterable[Any]) -> None:
    for chunk in chunks:
        f.write(chunk)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
