"""BirdCLEF-layout data sets: read and validate ``train_metadata.csv``, and a torch ``Dataset`` of clips.

Layout: ``<root>/train_audio/<label>/<clip>``, ``<root>/train_metadata.csv`` with ``filename`` (relative to
``train_audio/``) and either a ``labels`` column (space-separated codes) or ``primary_label`` +
``secondary_labels`` (a Python list literal, BirdCLEF style), optional ``<root>/taxonomy.csv`` giving the
species order, optional ``<root>/background/`` with no-call clips.

``read_clip_table(..., check_audio=True)`` (what training uses) also decodes every clip once, before any
epoch, and records the result per file (size, modification time, inode) in birdcall's cache folder
(or under ``audio_check_dir``; :func:`audio_check_record`), so the next run decodes only new or changed files.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import AUDIO_EXTENSIONS, load, stream
from ..errors import AudioLoadError, DataError, ParameterError
from ..features import FeatureConfig, crop_or_pad
from ..fileio import atomic_write_text, cache_home
from ..layout import BACKGROUND, TRAIN_METADATA, DatasetLayout
from ..progress import track
from ..types import Pathlike
from .cache import AudioCache
from .labels import LabelSet

__all__ = ["audio_check_record", "ClipDataset", "ClipReadError", "ClipTable", "check_clip_audio", "read_clip_table", "read_taxonomy"]

_AUDIO_CHECK_FORMAT = "birdcall.audio_check/1"


@dataclass(frozen=True)
class ClipTable:
    """Validated labelled clips: ``frame`` has ``path``, ``filename``, ``primary_label``, ``labels`` (list),
    ``secondary`` (list); ``problems`` lists rows (and background files) dropped with ``skip_bad=True`` as
    ``(where, cause)``. ``audio_checked``: every clip (and background clip) was decoded once
    (:func:`check_clip_audio`); ``background``: the background clips that passed that check (None: all of
    ``<root>/background/``)."""

    root: Path
    frame: pd.DataFrame
    labels: LabelSet
    problems: tuple[tuple[str, str], ...] = ()
    audio_checked: bool = False
    background: tuple[Path, ...] | None = None

    @property
    def background_files(self) -> list[Path]:
        if self.background is not None:
            return list(self.background)
        folder = DatasetLayout(self.root).background
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if folder.is_dir() else []


def read_taxonomy(path: Pathlike) -> LabelSet:
    """Species order and names from a BirdCLEF/NIPS4B ``taxonomy.csv`` (``species_code`` or ``primary_label``)."""
    frame = _read_csv(path)
    code_col = next((c for c in ("species_code", "primary_label") if c in frame.columns), None)
    if code_col is None:
        raise DataError(path, "no species_code or primary_label column")
    codes = frame[code_col].astype(str).str.strip()
    if codes.duplicated().any():
        raise DataError(path, f"duplicate species codes: {sorted(set(codes[codes.duplicated()]))[:5]}")
    sci = tuple(frame["scientific_name"].astype(str)) if "scientific_name" in frame.columns else ()
    com = tuple(frame["common_name"].astype(str)) if "common_name" in frame.columns else ()
    return LabelSet(tuple(codes), sci, com)


def _read_csv(path: Pathlike) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(p, f"cannot parse CSV ({' '.join(str(err).split())})") from None
    if frame.empty:
        raise DataError(p, "no rows")
    return frame


def _parse_codes(value: str, *, list_literal: bool) -> list[str]:
    value = (value or "").strip()
    if not value:
        return []
    if list_literal:
        parsed = ast.literal_eval(value)  # literal_eval only accepts literals: safe on untrusted text
        if not isinstance(parsed, (list, tuple)) or not all(isinstance(c, str) for c in parsed):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return [c.strip() for c in parsed if c.strip()]
    return value.split()


def read_clip_table(
    root: Pathlike,
    *,
    skip_bad: bool = False,
    check_files: bool = True,
    check_audio: bool = False,
    audio_check_dir: Pathlike | None = None,
    show_progress: bool = False,
) -> ClipTable:
    """Read and validate ``<root>/train_metadata.csv``.

    Every problem (unknown label, empty primary label, missing file, unparseable label list, duplicate row,
    and with ``check_audio`` a clip or background clip that does not decode) is collected first; then either
    one :class:`DataError` lists them all, or with ``skip_bad`` those rows are dropped and listed in
    ``ClipTable.problems``. Nothing fails later, halfway through an epoch.

    Args:
        root: the data set folder.
        skip_bad: drop bad rows (and bad background clips) instead of raising.
        check_files: check that every clip exists.
        check_audio: decode every clip and background clip once (see :func:`check_clip_audio`).
        audio_check_dir: where the decode results are recorded (default: :func:`birdcall.fileio.cache_home`).
        show_progress: progress bar for the decode check.

    Raises:
        DataError: malformed metadata, or bad rows without ``skip_bad``.
    """
    root = Path(root)
    layout = DatasetLayout(root)
    meta_path = layout.train_metadata
    meta = _read_csv(meta_path)
    if "filename" not in meta.columns:
        raise DataError(meta_path, "no 'filename' column")
    has_labels = "labels" in meta.columns
    if not has_labels and "primary_label" not in meta.columns:
        raise DataError(meta_path, "needs a 'labels' column or 'primary_label' (+ optional 'secondary_labels')")
    taxonomy_path = layout.taxonomy
    taxonomy = read_taxonomy(taxonomy_path) if taxonomy_path.is_file() else None

    problems: list[tuple[str, str]] = []
    rows = []
    seen: set[str] = set()
    for i, rec in enumerate(meta.to_dict("records")):
        where = f"{meta_path.name} row {i + 2} ({rec['filename']})"
        try:
            if has_labels:
                labels = _parse_codes(rec["labels"], list_literal=False)
                primary = rec.get("primary_label") or (labels[0] if labels else "")
            else:
                primary = rec["primary_label"].strip()
                labels = [primary] if primary else []
            secondary = _parse_codes(rec.get("secondary_labels", ""), list_literal=True)
        except (ValueError, SyntaxError) as err:
            problems.append((where, f"cannot parse labels: {err}"))
            continue
        if not has_labels and not primary:  # else it would become a species named ''
            problems.append((where, "empty primary_label"))
            continue
        labels = list(dict.fromkeys(labels + [c for c in secondary if c not in labels]))
        if not labels:
            problems.append((where, "no label"))
            continue
        unknown = [c for c in labels if taxonomy is not None and c not in taxonomy]
        if unknown:
            problems.append((where, f"unknown species code(s) {unknown} (not in taxonomy.csv)"))
            continue
        if rec["filename"] in seen:
            problems.append((where, "duplicate row"))
            continue
        seen.add(rec["filename"])
        path = layout.clip(rec["filename"])
        if check_files and not path.is_file():
            problems.append((where, f"audio file missing: {path}"))
            continue
        rows.append({"path": path, "filename": rec["filename"], "primary_label": primary, "labels": labels,
                     "secondary": [c for c in secondary if c != primary], "_where": where})
    if problems and not skip_bad:
        raise _bad_rows(meta_path, problems)
    if not rows:
        raise DataError(meta_path, "no usable rows")
    frame = pd.DataFrame(rows)
    if taxonomy is None:
        taxonomy = LabelSet(tuple(sorted({c for labels in frame["labels"] for c in labels})))
    table = ClipTable(root, frame.drop(columns="_where"), taxonomy, tuple(problems))
    if check_audio:
        table = _check_audio(table, list(frame["_where"]), skip_bad=skip_bad, record_dir=audio_check_dir, show_progress=show_progress)
    return table


def _bad_rows(meta_path: Path, problems: list[tuple[str, str]]) -> DataError:
    """One DataError for all problems: the first five shown, the rest counted."""
    shown = "; ".join(f"{w}: {c}" for w, c in problems[:5])
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    files = sum(w.startswith("background/") for w, _ in problems)
    rows = len(problems) - files
    what = " and ".join(part for part in (f"{rows} bad row(s)" if rows else "", f"{files} bad background file(s)" if files else "") if part)
    return DataError(meta_path, f"{what}: {shown}{more} (use skip_bad to drop them)")


def check_clip_audio(
    table: ClipTable,
    *,
    skip_bad: bool = False,
    record_dir: Pathlike | None = None,
    show_progress: bool = False,
    workers: int | None = None,
) -> ClipTable:
    """Decode every clip and background clip of ``table`` once, so a corrupt file is found before training.

    A file is decoded in full at its own rate (:func:`birdcall.audio.stream`: bounded memory, the same damage
    checks as :func:`birdcall.audio.load`). The outcome is recorded per file with its size, modification
    time and inode in :func:`audio_check_record` (written atomically; skipped when the
    folder is read-only), so a later check decodes only new or changed files.

    Args:
        table: from :func:`read_clip_table`.
        skip_bad: drop the rows (and background clips) that do not decode, listing them in ``problems``,
            instead of raising.
        record_dir: folder of the record (default: :func:`birdcall.fileio.cache_home`).
        show_progress: progress bar while decoding.
        workers: decoding threads (default: up to 4).

    Returns:
        The table without the bad clips, ``audio_checked=True``.

    Raises:
        DataError: a clip does not decode and not ``skip_bad`` (one line listing them, like other bad rows).
    """
    where = [f"{TRAIN_METADATA} ({f})" for f in table.frame["filename"]]
    return _check_audio(table, where, skip_bad=skip_bad, record_dir=record_dir, show_progress=show_progress, workers=workers)


def _check_audio(
    table: ClipTable, where: list[str], *, skip_bad: bool, record_dir: Pathlike | None, show_progress: bool, workers: int | None = None
) -> ClipTable:
    """:func:`check_clip_audio`, with ``where`` naming each row in the messages."""
    root = Path(table.root)
    record_path = _record_path(root, record_dir)
    record = _read_record(record_path)
    clips = list(table.frame["path"])
    background = table.background_files
    paths = [Path(p) for p in clips] + background
    keys = [_record_key(root, p) for p in paths]
    todo = [(i, p) for i, p in enumerate(paths) if _stamp(p) is None or record.get(keys[i], {}).get("stamp") != _stamp(p)]
    if todo:
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(lambda item: _decode_error(item[1]), todo)
            for (i, p), error in track(zip(todo, results), total=len(todo), description="checking audio", disable=not show_progress, unit="file"):
                record[keys[i]] = {"stamp": _stamp(p), "error": error}
        _write_record(record_path, record, keep=set(keys))
    errors = [record.get(k, {}).get("error") for k in keys]
    layout = DatasetLayout(root)
    problems = [(where[i], f"cannot decode audio: {errors[i]}") for i in range(len(clips)) if errors[i]]
    problems += [(f"{BACKGROUND}/{p.relative_to(layout.background).as_posix()}", f"cannot decode audio: {errors[len(clips) + j]}")
                 for j, p in enumerate(background) if errors[len(clips) + j]]
    if problems and not skip_bad:
        raise _bad_rows(layout.train_metadata, problems)
    keep = [i for i in range(len(clips)) if not errors[i]]
    if not keep:
        raise DataError(layout.train_metadata, "no usable rows (no clip decodes)")
    frame = table.frame.iloc[keep].reset_index(drop=True) if len(keep) < len(clips) else table.frame
    good_background = tuple(p for j, p in enumerate(background) if not errors[len(clips) + j])
    return replace(table, frame=frame, problems=tuple(table.problems) + tuple(problems), audio_checked=True, background=good_background)


def audio_check_record(root: Pathlike, record_dir: Pathlike | None = None) -> Path:
    """Where the decode results of the data set at ``root`` are recorded: ``audio-check-<digest of root>.json``
    in ``record_dir``, by default birdcall's cache folder (:func:`birdcall.fileio.cache_home`). Never in the data
    set folder itself: data sets are often shared or read-only, and a user's data is not ours to write into."""
    digest = hashlib.sha1(os.path.abspath(root).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return Path(record_dir if record_dir is not None else cache_home()) / f"audio-check-{digest}.json"


_record_path = audio_check_record


def _record_key(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.path.abspath(path)


def _stamp(path: Path) -> list[int] | None:
    """What says the recorded result is still valid: size, modification time (ns) and inode (a replaced file
    is a new one); None if the file cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _decode_error(path: Path) -> str | None:
    try:
        for _ in stream(path, sample_rate=None, chunk_duration=60.0):
            pass
    except AudioLoadError as err:
        return err.cause
    return None


def _read_record(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _AUDIO_CHECK_FORMAT or not isinstance(data.get("files"), dict):
        return {}
    return {k: v for k, v in data["files"].items() if isinstance(v, dict)}


def _write_record(path: Path, record: dict, *, keep: set[str]) -> None:
    """Save the record (files of other tables sharing it are kept); a read-only folder only costs a re-check."""
    current = _read_record(path)  # another run may have added its files meanwhile
    current.update({k: v for k, v in record.items() if k in keep})
    try:
        atomic_write_text(path, json.dumps({"format": _AUDIO_CHECK_FORMAT, "files": current}, sort_keys=True))
    except OSError:
        pass


class ClipDataset:
    """Map-style torch dataset of fixed-length clips: ``(waveform (clip_samples,), target (num_classes,))``.

    Training crops at random (or weighted by energy), evaluation from the start; in training the optional
    ``augment`` (a waveform transform of :mod:`birdcall.augment`, e.g. background noise, pitch shift, gain)
    then runs on the crop. Randomness comes from a generator seeded by ``(seed, epoch, index)``, so results
    do not depend on worker count or order. Decoded audio comes from ``audio_cache`` (memory-mapped on disk,
    shared by workers) or, without one, is kept in memory per process (``cache=True``).
    """

    def __init__(
        self,
        paths: list[Path],
        targets: np.ndarray,
        features: FeatureConfig,
        *,
        train: bool,
        crop: str = "random",
        seed: int = 0,
        cache: bool = True,
        augment=None,
        audio_cache: AudioCache | None = None,
    ):
        if len(paths) != len(targets):
            raise DataError(str(paths[0]) if paths else "<dataset>", f"{len(paths)} paths for {len(targets)} targets")
        if audio_cache is not None and audio_cache.sample_rate != features.sample_rate:
            raise ParameterError(f"audio cache at {audio_cache.sample_rate} Hz for features at {features.sample_rate} Hz")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.features = features
        self.train = train
        self.crop = crop if train else "start"
        self.seed = seed
        self.epoch = 0
        self.augment = augment if train else None
        self.audio_cache = audio_cache
        self._memory: dict[Path, np.ndarray] | None = {} if cache and audio_cache is None else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def _audio(self, path: Path) -> np.ndarray:
        if self.audio_cache is not None:
            return self.audio_cache.get(path)
        if self._memory is not None and path in self._memory:
            return self._memory[path]
        y = load(path, sample_rate=self.features.sample_rate)
        if self._memory is not None:
            self._memory[path] = y
        return y

    def __getitem__(self, index: int):
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, index])
        try:
            y = crop_or_pad(
                self._audio(self.paths[index]), num_samples=self.features.clip_samples, mode=self.crop, rng=rng, pad=self.features.pad
            )
            if self.augment is not None:  # may read a background clip
                y = self.augment(y, sample_rate=self.features.sample_rate, rng=rng)
        except AudioLoadError as err:  # checked up front, so changed on disk since: say which file, in one line
            raise ClipReadError(err.path, f"{_READ_FAILED} ({err.cause})") from None
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), torch.from_numpy(self.targets[index])


_READ_FAILED = "cannot be read during training"


class ClipReadError(DataError):
    """A clip (or background clip) failed to decode in :class:`ClipDataset`, e.g. changed on disk after the check.

    A DataLoader worker's exception reaches the main process as ``type(err)(formatted traceback)``; this class
    accepts that one argument and recovers its ``"<path>: <cause>"`` line, so the user sees the same one-line
    error with ``num_workers > 0`` as without.
    """

    def __init__(self, path: Pathlike, cause: str | None = None):
        if cause is None:
            lines = [line for line in str(path).splitlines() if line.strip()]
            last = lines[-1] if lines else str(path)
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
            head, sep, tail = message.partition(f": {_READ_FAILED}")
            path, cause = (head, _READ_FAILED + tail) if sep else ("<DataLoader worker>", message)
        super().__init__(path, cause)
