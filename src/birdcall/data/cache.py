"""`AudioCache`: decoded audio kept on disk as memory-mapped ``.npy`` files, so later epochs skip decoding.

Layout: ``<cache_dir>/<sample_rate>hz-<dtype>/<stem>-<path hash>/<state hash>.npy``. The folder names one
source file (its absolute path); the file name hashes what says whether the entry is still fresh: the source's
size, modification time (ns) and inode. A source rewritten in place or replaced (``write_audio`` replaces)
gets a new state hash, so the stale entry is never read: it is re-decoded, and the old entry deleted.

Entries are written under a unique temporary name in the entry's folder, then ``os.replace``-d into place, so
any number of DataLoader workers (threads or processes) may fill the same entry at once: each rename is
atomic, the last one wins, and every version is complete. A reader that finds an entry unreadable (say, cut
short by a crash) decodes again and rewrites it, so entries are not ``fsync``-ed. Unlinking or replacing a
file that another process has memory-mapped is safe on POSIX.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validate import check_int, is_int
from ..audio import DEFAULT_SAMPLE_RATE, load
from ..errors import AudioLoadError, ParameterError
from ..progress import track
from ..types import Pathlike

__all__ = ["CACHE_DTYPES", "AudioCache", "WarmStats"]

CACHE_DTYPES = ("float16", "int16", "float32")
_INT16_SCALE = 32767.0
_FORMAT_VERSION = 1  # bump when the entry layout or encoding changes: every old entry then reads as a miss


@dataclass(frozen=True)
class WarmStats:
    """What :meth:`AudioCache.warm` did: clips ``decoded``, clips already ``cached``, and ``failed`` files
    as ``(path, cause)``."""

    decoded: int
    cached: int
    failed: tuple[tuple[str, str], ...] = ()


class AudioCache:
    """Decoded mono audio at one sample rate, stored on disk as memory-mapped arrays.

    The first :meth:`get` of a file decodes it with :func:`birdcall.audio.load` and writes the entry; later
    calls (from any process) read the memory-mapped entry and convert it to float32. Storage is ``float16``
    (half the size of float32, error at most 2**-12 for samples in [-1, 1]), ``int16`` (error at most
    1/65534, samples clipped to [-1, 1] as in a 16-bit WAV) or ``float32`` (exact).

    The object holds only its settings, so it pickles cheaply into DataLoader worker processes.

    Args:
        cache_dir: root folder; created when the first entry is written. Several caches (sample rates,
            dtypes) may share it.
        sample_rate: rate in Hz the audio is decoded at.
        dtype: storage type, one of :data:`CACHE_DTYPES`.

    Raises:
        ParameterError: unknown ``dtype`` or invalid ``sample_rate``.

    Example:
        >>> cache = AudioCache(tmp / "cache", sample_rate=32000)  # doctest: +SKIP
        >>> y = cache.get("train_audio/erirub/trainfile004.ogg")  # decodes and writes the entry  # doctest: +SKIP
        >>> y = cache.get("train_audio/erirub/trainfile004.ogg")  # reads the memory map  # doctest: +SKIP
    """

    def __init__(self, cache_dir: Pathlike, *, sample_rate: int = DEFAULT_SAMPLE_RATE, dtype: str = "float16"):
        if dtype not in CACHE_DTYPES:
            raise ParameterError(f"AudioCache: dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
        check_int("sample_rate", sample_rate, min=1, owner="AudioCache")
        self.cache_dir = Path(cache_dir)
        self.sample_rate = int(sample_rate)
        self.dtype = dtype
        self._warned = False

    def __repr__(self) -> str:
        return f"AudioCache({str(self.cache_dir)!r}, sample_rate={self.sample_rate}, dtype={self.dtype!r})"

    @property
    def root(self) -> Path:
        """Folder of this cache's entries (one per sample rate and dtype)."""
        return self.cache_dir / f"{self.sample_rate}hz-{self.dtype}"

    # ---------------------------------------------------------------------------------------------- reading

    def get(self, path: Pathlike, *, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of ``path``, decoded at ``sample_rate``, as a new float32 array.

        Only the requested samples are read from the memory map (and converted), so a random crop of a long
        recording costs the crop. A missing or stale entry is decoded and written first.

        Args:
            path: audio file, as for :func:`birdcall.audio.load`.
            start: first sample (Python slice semantics, negative counts from the end).
            stop: end sample (exclusive); None reads to the end.

        Returns:
            ``(num_samples,)`` float32 array, writable and independent of the cache file.

        Raises:
            AudioLoadError: as :func:`birdcall.audio.load` (the message names the file).
        """
        return self._to_float32(self.memmap(path)[start:stop])

    def memmap(self, path: Pathlike) -> np.ndarray:
        """The stored ``(num_samples,)`` array of ``path`` in the cache's ``dtype``, read-only and memory-mapped.

        ``len(cache.memmap(path))`` is the clip length without reading any samples. When the entry cannot
        be written (read-only or full disk) this warns once and returns the decoded samples in memory.

        Raises:
            AudioLoadError: as :func:`birdcall.audio.load`.
        """
        entry = self._entry(path)
        if entry is None:  # not a regular file: load raises the same AudioLoadError it always does
            return self._encode(load(path, sample_rate=self.sample_rate))
        stored = self._open(entry)
        return stored if stored is not None else self._fill(path, entry)

    def entry_path(self, path: Pathlike) -> Path | None:
        """Where the entry for the current version of ``path`` lives (None when ``path`` is not a file)."""
        return self._entry(path)

    def _entry(self, path: Pathlike) -> Path | None:
        source = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(source)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:48] or "audio"
        where = hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        state = hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{_FORMAT_VERSION}".encode()).hexdigest()[:16]
        return self.root / f"{name}-{where}" / f"{state}.npy"

    def _open(self, entry: Path) -> np.ndarray | None:
        """The memory-mapped entry, or None when it is missing or unreadable (then it is rebuilt)."""
        try:
            stored = np.load(entry, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):  # cut short or damaged: treat as a miss and rewrite it
            return None
        if stored.dtype != np.dtype(self.dtype) or stored.ndim != 1 or stored.size == 0:
            return None
        return stored

    # ---------------------------------------------------------------------------------------------- writing

    def _fill(self, path: Pathlike, entry: Path) -> np.ndarray:
        """Decode ``path``, write ``entry`` atomically, delete older versions; return the stored samples."""
        data = self._encode(load(path, sample_rate=self.sample_rate))
        tmp = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{entry.stem}.", suffix=".tmp", dir=entry.parent)
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, data, allow_pickle=False)
            os.replace(tmp, entry)
            tmp = None
        except OSError as err:
            if not self._warned:
                self._warned = True
                warnings.warn(f"AudioCache: cannot write {entry} ({err}); decoding without the cache", stacklevel=3)
            return data
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        for old in entry.parent.glob("*.npy"):  # stale versions of this source
            if old.name != entry.name:
                with contextlib.suppress(OSError):
                    old.unlink()
        return data

    def _encode(self, y: np.ndarray) -> np.ndarray:
        if self.dtype == "int16":
            return np.rint(np.clip(y, -1.0, 1.0) * _INT16_SCALE).astype(np.int16)
        return y.astype(self.dtype)

    def _to_float32(self, stored: np.ndarray) -> np.ndarray:
        if self.dtype == "int16":
            return stored.astype(np.float32) * np.float32(1.0 / _INT16_SCALE)
        return np.array(stored, dtype=np.float32)  # always a copy: never hand out the memory map

    # -------------------------------------------------------------------------------------------- warming

    def warm(
        self,
        paths: Iterable[Pathlike],
        *,
        workers: int = 1,
        show_progress: bool = False,
        skip_bad: bool = False,
    ) -> WarmStats:
        """Fill the cache for ``paths`` (e.g. before training, so epoch one does not decode either).

        Decoding runs in ``workers`` threads (libsndfile and soxr release the GIL). Every file is tried;
        bad ones are collected.

        Args:
            paths: audio files.
            workers: decoding threads.
            show_progress: show a progress bar on stderr.
            skip_bad: return bad files in ``WarmStats.failed`` instead of raising.

        Returns:
            How many files were decoded, how many were already cached, and the failures.

        Raises:
            AudioLoadError: after all files were tried, for the first bad file (the message counts the
                others), unless ``skip_bad``.
            ParameterError: ``workers`` < 1.
        """
        if not is_int(workers) or workers < 1:
            raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
        paths = list(paths)

        def one(path: Pathlike) -> tuple[bool, tuple[str, str] | None]:
            try:
                entry = self._entry(path)
                if entry is not None and self._open(entry) is not None:
                    return False, None
                if entry is None:
                    load(path, sample_rate=self.sample_rate)  # raises the AudioLoadError
                else:
                    self._fill(path, entry)
                return True, None
            except AudioLoadError as err:
                return False, (err.path, err.cause)

        if workers == 1:
            results = map(one, paths)
        else:
            pool = ThreadPoolExecutor(max_workers=workers)
            results = pool.map(one, paths)
        decoded = cached = 0
        failed = []
        try:
            for did_decode, failure in track(results, total=len(paths), description="caching audio", disable=not show_progress, unit="file"):
                if failure is not None:
                    failed.append(failure)
                elif did_decode:
                    decoded += 1
                else:
                    cached += 1
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
        if failed and not skip_bad:
            more = f" (and {len(failed) - 1} more bad file(s); warm(..., skip_bad=True) lists them)" if len(failed) > 1 else ""
            raise AudioLoadError(failed[0][0], failed[0][1] + more)
        return WarmStats(decoded, cached, tuple(failed))
