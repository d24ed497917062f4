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

    Training crops at random (or weighted by energy), evaluation from the start. Randomness comes from a
    generator seeded by ``(seed, epoch, index)``, so results do not depend on worker count or order.
    Decoded audio can be cached in memory (``cache=True``), so epochs after the first do not decode again.

    In training, with probability ``noise_p`` a random crop of one of ``noise_paths`` (no-call recordings such
    as a data set's ``background/``) is added at a signal-to-noise ratio drawn from ``noise_snr_db``.
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
        noise_paths: list[Path] = (),
        noise_p: float = 0.0,
        noise_snr_db: tuple[float, float] = (3.0, 30.0),
    ):
        if not 0.0 <= noise_p <= 1.0 or noise_snr_db[0] > noise_snr_db[1]:
            raise ParameterError(f"noise_p must be in [0, 1] and noise_snr_db increasing, got {noise_p}, {noise_snr_db}")
        if noise_p > 0 and not noise_paths:
            raise ParameterError("noise_p > 0 needs noise_paths (e.g. the data set's background/ clips)")
        if len(paths) != len(targets):
            raise DataError(str(paths[0]) if paths else "<dataset>", f"{len(paths)} paths for {len(targets)} targets")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.float32)
        self.features = features
        self.train = train
        self.crop = crop if train else "start"
        self.seed = seed
        self.epoch = 0
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None
        self.noise_paths = list(noise_paths)
        self.noise_p = noise_p if train else 0.0
        self.noise_snr_db = noise_snr_db

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def _audio(self, path: Path) -> np.ndarray:
        if self._cache is not None and path in self._cache:
            return self._cache[path]
        y = load(path, sample_rate=self.features.sample_rate)
        if self._cache is not None:
            self._cache[path] = y
        return y

    def __getitem__(self, index: int):
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, index])
        y = crop_or_pad(self._audio(self.paths[index]), num_samples=self.features.clip_samples, mode=self.crop, rng=rng)
        if self.noise_p and rng.random() < self.noise_p:
            noise_path = self.noise_paths[rng.integers(len(self.noise_paths))]
            noise = crop_or_pad(self._audio(noise_path), num_samples=len(y), mode="random", rng=rng)
            signal_rms, noise_rms = np.sqrt(np.mean(y**2)), np.sqrt(np.mean(noise**2))
            if noise_rms > 0 and signal_rms > 0:
                snr_db = rng.uniform(*self.noise_snr_db)
                y = y + noise * (signal_rms / noise_rms / 10 ** (snr_db / 20))
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), torch.from_numpy(self.targets[index])
