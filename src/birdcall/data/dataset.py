"""BirdCLEF-layout data sets: read and validate ``train_metadata.csv``, and a torch ``Dataset`` of clips.

Layout: ``<root>/train_audio/<label>/<clip>``, ``<root>/train_metadata.csv`` with ``filename`` (relative to
``train_audio/``) and either a ``labels`` column (space-separated codes) or ``primary_label`` +
``secondary_labels`` (a Python list literal, BirdCLEF style), optional ``<root>/taxonomy.csv`` giving the
species order, optional ``<root>/background/`` with no-call clips.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import AUDIO_EXTENSIONS, load
from ..errors import DataError, ParameterError
from ..features import FeatureConfig, crop_or_pad
from ..types import Pathlike
from .cache import AudioCache
from .labels import LabelSet

__all__ = ["ClipTable", "read_clip_table", "read_taxonomy", "ClipDataset"]


@dataclass(frozen=True)
class ClipTable:
    """Validated labelled clips: ``frame`` has ``path``, ``filename``, ``primary_label``, ``labels`` (list),
    ``secondary`` (list); ``problems`` lists rows dropped with ``skip_bad=True`` as ``(row, cause)``."""

    root: Path
    frame: pd.DataFrame
    labels: LabelSet
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def background_files(self) -> list[Path]:
        folder = self.root / "background"
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


def read_clip_table(root: Pathlike, *, skip_bad: bool = False, check_files: bool = True) -> ClipTable:
    """Read and validate ``<root>/train_metadata.csv``.

    Every problem (unknown label, missing file, unparseable label list, duplicate row) is collected first;
    then either one :class:`DataError` lists them all, or with ``skip_bad`` those rows are dropped and listed
    in ``ClipTable.problems``. Nothing fails later, halfway through an epoch.

    Raises:
        DataError: malformed metadata, or bad rows without ``skip_bad``.
    """
    root = Path(root)
    meta_path = root / "train_metadata.csv"
    meta = _read_csv(meta_path)
    if "filename" not in meta.columns:
        raise DataError(meta_path, "no 'filename' column")
    has_labels = "labels" in meta.columns
    if not has_labels and "primary_label" not in meta.columns:
        raise DataError(meta_path, "needs a 'labels' column or 'primary_label' (+ optional 'secondary_labels')")
    taxonomy_path = root / "taxonomy.csv"
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
                labels = [primary]
            secondary = _parse_codes(rec.get("secondary_labels", ""), list_literal=True)
        except (ValueError, SyntaxError) as err:
            problems.append((where, f"cannot parse labels: {err}"))
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
        path = root / "train_audio" / rec["filename"]
        if check_files and not path.is_file():
            problems.append((where, f"audio file missing: {path}"))
            continue
        rows.append({"path": path, "filename": rec["filename"], "primary_label": primary, "labels": labels,
                     "secondary": [c for c in secondary if c != primary]})
    if problems and not skip_bad:
        shown = "; ".join(f"{w}: {c}" for w, c in problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise DataError(meta_path, f"{len(problems)} bad row(s): {shown}{more} (use skip_bad to drop them)")
    if not rows:
        raise DataError(meta_path, "no usable rows")
    frame = pd.DataFrame(rows)
    if taxonomy is None:
        taxonomy = LabelSet(tuple(sorted({c for labels in frame["labels"] for c in labels})))
    return ClipTable(root, frame, taxonomy, tuple(problems))


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
        y = crop_or_pad(
            self._audio(self.paths[index]), num_samples=self.features.clip_samples, mode=self.crop, rng=rng, pad=self.features.pad
        )
        if self.augment is not None:
            y = self.augment(y, sample_rate=self.features.sample_rate, rng=rng)
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), torch.from_numpy(self.targets[index])
