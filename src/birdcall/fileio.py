"""Atomic file output: write under a temporary name in the destination folder, fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the old file or the complete new one, never a torn write.
The rename is made durable too: the folder holding the file is fsynced after it (:func:`fsync_dir`).

Temporaries are named ``.<name>.<12 hex digits>.birdcall.tmp`` (:data:`TEMP_SUFFIX`), beside the file they
will become; a process killed between creating one and renaming it leaves it behind, and
:func:`remove_stale_temporaries` removes such leftovers (the caller makes sure no writer is still at work).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from .types import Pathlike

__all__ = ["TEMP_SUFFIX", "atomic_path", "atomic_to_csv", "atomic_write_text", "cache_home", "fsync_dir", "hash_files", "remove_stale_temporaries"]

TEMP_SUFFIX = ".birdcall.tmp"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX), re.DOTALL)


def _temporary_beside(dest: Path) -> Path:
    """Create an empty file ``.<name>.<12 hex digits>.birdcall.tmp`` beside ``dest``, with the mode a plain
    ``open()`` gives (0666 minus the umask; ``tempfile.mkstemp`` would make it 0600)."""
    while True:
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def fsync_dir(path: Pathlike) -> None:
    """fsync the folder ``path``, so that the names created, renamed or removed in it survive a power cut.

    Best effort: a platform or file system that cannot open or fsync a folder (Windows, some network file
    systems) is skipped silently; the data itself was fsynced before the rename.
    """
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Pathlike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is moved onto ``path``, on error removed.

    On success the file's data is fsynced before the rename and its folder after it (:func:`fsync_dir`).
    """
    dest = Path(path)
    created = not dest.parent.is_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if created:  # the new folder's own entry, in its parent
        fsync_dir(dest.parent.parent)
    tmp = _temporary_beside(dest)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def remove_stale_temporaries(folder: Pathlike, *, name: str | None = None) -> list[Path]:
    """Delete the temporaries :func:`atomic_path` left in ``folder`` (not its subfolders) when killed.

    Only regular files named ``.<name>.<12 hex digits>.birdcall.tmp`` are removed (with ``name``: only those of
    that destination name), so nothing else in a shared folder is touched. The caller must make sure that no
    atomic write into ``folder`` is in progress (a pipeline run holds a lock for that).

    Returns:
        The files removed (none if ``folder`` does not exist).
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or (name is not None and match.group("name") != name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    if removed:
        fsync_dir(folder)
    return removed


def atomic_write_text(path: Pathlike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_to_csv(frame: pd.DataFrame, path: Pathlike, **kwargs) -> Path:
    """``frame.to_csv(path, **kwargs)``, atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return Path(path)


def hash_files(paths: Iterable[Pathlike], *, extra: bytes = b"") -> str:
    """sha256 hex digest of the bytes of ``paths`` in order, then ``extra``; read in 1 MiB blocks, so memory
    stays flat whatever the file size (model files identify runs, caches and embeddings by it)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(extra)
    return digest.hexdigest()


def cache_home() -> Path:
    """birdcall's own cache folder: ``$BIRDCALL_CACHE_DIR``, else ``$XDG_CACHE_HOME/birdcall``, else
    ``~/.cache/birdcall`` (not created here)."""
    explicit = os.environ.get("BIRDCALL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "birdcall"
