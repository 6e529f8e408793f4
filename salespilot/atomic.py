"""Files written whole: a reader, or the next run after a kill -9, sees the old file or the new
one, never half of one.

Every file SalesPilot writes for later (feature tables and their manifest, morning lists, the
outbox, briefs, tokens, keys, previous scores) goes through :func:`replacing`: the bytes go to
a temporary file in the same folder (same file system, so the rename is atomic), are flushed
to disk, and the temporary file is renamed onto the target with :func:`os.replace`. A kill
mid-write leaves only a temporary ``.<name>.<random>.tmp`` beside the target, which
:func:`remove_leftovers` clears and readers ignore.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (unique per writer, so two never share one)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


@contextmanager
def replacing(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; when the block ends without
    an error, flush it, set ``mode`` (e.g. ``0o600``) and rename it onto ``path``. On an error
    the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # on disk before the rename: a crash keeps one or the other
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def replacing_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder to fill with ``path``'s new content; when the block ends
    without an error, swap it in for ``path`` (the old folder renamed aside first, then
    removed). On an error the temporary folder is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        old = temporary_name(path) if path.exists() else None
        if old is not None:
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` whole (see :func:`replacing`); returns ``path``."""
    with replacing(path, mode=mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole."""
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: str | Path, obj: Any, *, mode: int | None = None, **dumps: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` whole (``dumps``: :func:`json.dumps` options)."""
    return write_text(path, json.dumps(obj, **dumps), mode=mode)


def leftovers(folder: str | Path) -> list[Path]:
    """The temporary files a killed writer left in ``folder`` (and its sub-folders)."""
    return sorted(Path(folder).rglob(f".*{TMP_SUFFIX}"))


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Delete what :func:`leftovers` finds; returns the removed paths."""
    found = leftovers(folder)
    for p in found:
        p.unlink(missing_ok=True)
    return found
