"""Atomic file writes: a file minirl writes is either its complete new version or untouched.

Every file is first written to a temporary file in the *same directory* (so the rename cannot
cross file systems), flushed and fsync'ed, then renamed over the target with ``os.replace``,
which POSIX and Windows perform atomically. A failure at any point — a full disk, a read-only
directory, an exception while serializing, Ctrl-C — removes the temporary file and leaves a
previous file at the target exactly as it was; no reader ever sees a half-written file.

    with atomic_open("runs/x/config.json", "w") as f:
        f.write(text)
    atomic_write_text(path, text);  atomic_copy(src, dst);  save_figure(fig, "curve.png")

Used for ``model.npz`` (``Agent.save``), ``config.json``, ``progress.csv`` snapshots
(``minirl.logger``) and every PNG (``minirl.plot``).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

_UMASK = os.umask(0)  # read the process umask once (os.umask can only read by setting)
os.umask(_UMASK)

__all__ = ["atomic_open", "atomic_write_text", "atomic_write_bytes", "atomic_copy",
           "save_figure"]


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on a clean exit rename it to ``path``.

    ``mode`` is ``"w"`` (text, ``kwargs`` go to ``open``: ``newline``, ``encoding``) or
    ``"wb"``. Raises whatever the write raised (OSError for a missing or read-only directory,
    a full disk); the temporary file is removed and ``path`` is untouched in every such case.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():  # else os.replace fails naming the temporary file, not ``path``
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file path", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file the usual permissions
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``Path(path)``."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``Path(path)``."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy the file ``src`` to ``dst`` atomically (``dst`` is its old self until the end)."""
    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return Path(dst)


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """``fig.savefig`` atomically. The format comes from ``path``'s suffix; a path without one
    gets ``.png`` appended (what matplotlib itself would write), and the path actually written
    is returned. ValueError naming the path for a suffix matplotlib cannot write."""
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    fmt = path.suffix[1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"cannot write {path}: unknown image format {fmt!r} (use e.g. .png, "
                         f".pdf, .svg)")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)
    return path
