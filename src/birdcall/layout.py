"""The one owner of two on-disk layouts: the training run folder (its file names, and the one parser of
``fold<i>``/``seed<j>``) and the BirdCLEF-layout data set (:class:`DatasetLayout`, at the end).

A model's folder (what one ``fit`` writes) holds::

    config.yaml  metrics.csv  last.safetensors  best.safetensors  oof.csv  train_state.pt

A K-fold run folder (``fit_folds``) holds ``config.yaml``, ``folds.csv``, ``summary.csv`` and ``oof.csv`` beside one
model folder per fold, ``fold<i>/``; a fold's seed ensemble (``seeds > 1``) keeps model 0 in ``fold<i>/`` itself and
model ``j >= 1`` in ``fold<i>/seed<j>/``. A hold-out run folder is a single model folder.

Training writes these paths and inference, evaluation and the tests read them, all through :class:`RunLayout`; which
files a new run may replace is decided in :mod:`birdcall.train.rundir`. Only folders named ``fold`` or ``seed``
followed by ASCII digits count (``fold0``, ``fold10``; not ``fold``, ``foldx``, ``fold-1`` nor a file), and they sort
by number (``fold2`` before ``fold10``). This module imports only the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BACKGROUND", "BEST", "CONFIG", "CV_FILES", "DatasetLayout", "EVENTS", "FOLDS", "FOLD_PREFIX", "FoldLayout", "LAST", "METRICS",
    "ModelLayout", "OOF", "RUN_FILES", "RunLayout", "SEED_PREFIX", "SOLUTION", "SOUNDSCAPES", "SOUNDSCAPE_EVENTS", "STATE", "SUMMARY",
    "TAXONOMY", "TRAIN_AUDIO", "TRAIN_METADATA", "fold_number", "seed_number",
]  # fmt: skip

CONFIG = "config.yaml"
"""The resolved config of the run (:class:`birdcall.train.TrainConfig` as YAML)."""
METRICS = "metrics.csv"
"""One row per epoch."""
LAST = "last.safetensors"
"""The model after the latest epoch."""
BEST = "best.safetensors"
"""The kept model (the epoch ``config.select`` names)."""
OOF = "oof.csv"
"""Validation (out-of-fold) scores of the kept epoch; in a K-fold run folder, every fold's, pooled."""
STATE = "train_state.pt"
"""Everything a resume needs (:mod:`birdcall.train.checkpoint`)."""
FOLDS = "folds.csv"
"""The fold of every clip (K-fold run folder)."""
SUMMARY = "summary.csv"
"""Per-fold metrics of the kept epochs and the pooled out-of-fold scores (K-fold run folder)."""

RUN_FILES = (CONFIG, METRICS, LAST, BEST, OOF, STATE)
"""What ``fit`` writes into a model folder."""
CV_FILES = (CONFIG, FOLDS, SUMMARY, OOF)
"""What ``fit_folds`` writes beside the fold folders."""

FOLD_PREFIX = "fold"
SEED_PREFIX = "seed"
_INDEXED = {prefix: re.compile(re.escape(prefix) + r"([0-9]+)") for prefix in (FOLD_PREFIX, SEED_PREFIX)}


def _number(path: Path, prefix: str) -> int | None:
    match = _INDEXED[prefix].fullmatch(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def fold_number(path: Path) -> int | None:
    """``i`` of a folder named ``fold<i>``; None for any other name, or for a path that is not a folder."""
    return _number(Path(path), FOLD_PREFIX)


def seed_number(path: Path) -> int | None:
    """``j`` of a folder named ``seed<j>``; None for any other name, or for a path that is not a folder."""
    return _number(Path(path), SEED_PREFIX)


def _indexed(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """The ``<prefix><n>`` folders in ``folder`` as ``(n, path)``, sorted by ``n`` (then name: ``fold1`` before ``fold01``)."""
    if not folder.is_dir():
        return []
    found = [(n, p) for p in folder.iterdir() if (n := _number(p, prefix)) is not None]
    return sorted(found, key=lambda item: (item[0], item[1].name))


@dataclass(frozen=True)
class ModelLayout:
    """The folder of one trained model: a hold-out run, a fold (its seed 0) or a fold's ``seed<j>/``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def last(self) -> Path:
        return self.root / LAST

    @property
    def best(self) -> Path:
        return self.root / BEST

    @property
    def oof(self) -> Path:
        return self.root / OOF

    @property
    def state(self) -> Path:
        return self.root / STATE


@dataclass(frozen=True)
class FoldLayout(ModelLayout):
    """``RUN/fold<number>/``: the fold's first model, and the folders of its seed ensemble."""

    number: int = 0

    def seed(self, member: int) -> ModelLayout:
        """The folder of model ``member`` of the fold's seed ensemble (0: the fold folder itself)."""
        return ModelLayout(self.root) if member == 0 else ModelLayout(self.root / f"{SEED_PREFIX}{member}")

    def seeds(self) -> list[ModelLayout]:
        """The ``seed<j>/`` folders present, in seed order (model 0, the fold folder, not included)."""
        return [ModelLayout(p) for _, p in _indexed(self.root, SEED_PREFIX)]

    def members(self) -> list[ModelLayout]:
        """The folders of the fold's models: the fold folder (seed 0), then the ``seed<j>/`` present, in seed order."""
        return [ModelLayout(self.root), *self.seeds()]


@dataclass(frozen=True)
class RunLayout(ModelLayout):
    """A training run folder: a hold-out run's model folder, or a K-fold run's (see the module docstring).

    Example:
        >>> run = RunLayout("runs/a")
        >>> run.fold(2).seed(1).best.as_posix()
        'runs/a/fold2/seed1/best.safetensors'
    """

    @property
    def folds_csv(self) -> Path:
        return self.root / FOLDS

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    def fold(self, number: int) -> FoldLayout:
        """``RUN/fold<number>/`` (whether it exists or not)."""
        return FoldLayout(self.root / f"{FOLD_PREFIX}{number}", number)

    def folds(self) -> list[FoldLayout]:
        """The ``fold<i>/`` folders present, sorted by fold number."""
        return [FoldLayout(p, n) for n, p in _indexed(self.root, FOLD_PREFIX)]

    def members(self, fold: int) -> list[ModelLayout]:
        """The folders of fold ``fold``'s models (:meth:`FoldLayout.members`)."""
        return self.fold(fold).members()

    def models(self) -> list[Path]:
        """The kept models of the run: every fold's ``best.safetensors`` in fold order, each followed by its seed
        ensemble's in seed order; with no fold model, ``[RUN/best.safetensors]`` if it exists; else ``[]``."""
        folds = [fold for fold in self.folds() if fold.best.is_file()]
        if folds:
            return [member.best for fold in folds for member in fold.members() if member.best.is_file()]
        return [self.best] if self.best.is_file() else []


# ------------------------------------------------------------------------------------------------ data set

TRAIN_AUDIO = "train_audio"
"""Labelled clips, ``train_audio/<filename>`` (``filename`` as in the metadata, e.g. ``<code>/<code>_0001.ogg``)."""
TRAIN_METADATA = "train_metadata.csv"
"""One row per clip: ``filename`` and its labels (:func:`birdcall.data.read_clip_table`)."""
TAXONOMY = "taxonomy.csv"
"""Species order and names (optional)."""
EVENTS = "events.csv"
"""Annotated calls of the clips (optional; a soundscape set's calls in :mod:`birdcall.data.soundscape`)."""
BACKGROUND = "background"
"""Noise-only clips (optional), any depth below it."""
SOUNDSCAPES = "soundscapes"
"""Long recordings to score window by window."""
SOLUTION = "solution.csv"
"""The soundscapes' truth: ``row_id`` (``<stem>_<end second>``) and one 0/1 column per species."""
SOUNDSCAPE_EVENTS = "soundscape_events.csv"
"""The calls in the soundscapes (synthetic data sets)."""


@dataclass(frozen=True)
class DatasetLayout:
    """A BirdCLEF-layout data set: what :func:`birdcall.synth.make_dataset` writes and :mod:`birdcall.data` reads.

    Example:
        >>> DatasetLayout("data").clip("amecro/amecro_0001.ogg").as_posix()
        'data/train_audio/amecro/amecro_0001.ogg'
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def train_audio(self) -> Path:
        return self.root / TRAIN_AUDIO

    def clip(self, filename: str) -> Path:
        """The audio of the clip the metadata names ``filename``."""
        return self.train_audio / filename

    @property
    def train_metadata(self) -> Path:
        return self.root / TRAIN_METADATA

    @property
    def taxonomy(self) -> Path:
        return self.root / TAXONOMY

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def background(self) -> Path:
        return self.root / BACKGROUND

    @property
    def soundscapes(self) -> Path:
        return self.root / SOUNDSCAPES

    @property
    def solution(self) -> Path:
        return self.root / SOLUTION

    @property
    def soundscape_events(self) -> Path:
        return self.root / SOUNDSCAPE_EVENTS
