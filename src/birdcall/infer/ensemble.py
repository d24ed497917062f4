"""Ensembles: several models (or the folds of one cross-validated run) scoring the same windows.

Two ways to ensemble:

- :func:`combine` merges finished prediction tables (indexed by ``file``, ``start_time``, ``end_time``, one
  column per species, as :func:`birdcall.infer.predict_file` returns them). It supports rank averaging, which
  needs every row of a member at once.
- :class:`EnsembleScorer` is itself a :class:`~birdcall.infer.scorer.Scorer`: every member scores each batch
  and the scores are merged per window, so a long recording is read and cut only once.

Members may predict different species: columns are aligned by species code (the union, in first-seen
order), and each species is combined over the members that predict it, with their weights renormalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import LabelSet
from ..errors import CheckpointError, ParameterError
from ..features import FeatureConfig
from ..layout import RunLayout
from ..types import Pathlike
from .scorer import Scorer, load_scorer

__all__ = ["METHODS", "EnsembleScorer", "align_labels", "check_method", "check_power", "combine", "load_ensemble", "run_models"]

METHODS = ("mean", "power", "rank")


def align_labels(label_sets: Sequence[LabelSet]) -> LabelSet:
    """The union of the species codes of ``label_sets``, in first-seen order.

    Scientific and common names are carried over when at least one label set has them; a code's name is
    taken from the first label set that names it, and a code no label set names gets ``""``.

    Raises:
        ParameterError: no label sets, or an element that is not a :class:`LabelSet`.
    """
    label_sets = list(label_sets)
    if not label_sets:
        raise ParameterError("align_labels: needs at least one LabelSet")
    for i, labels in enumerate(label_sets):
        if not isinstance(labels, LabelSet):
            raise ParameterError(f"align_labels: member {i} is a {type(labels).__name__}, not a LabelSet")
    codes: dict[str, None] = {}
    names: dict[str, dict[str, str]] = {"scientific_names": {}, "common_names": {}}
    for labels in label_sets:
        for j, code in enumerate(labels.codes):
            codes.setdefault(code, None)
            for field, known in names.items():
                values = getattr(labels, field)
                if values:
                    known.setdefault(code, values[j])
    kept = {field: tuple(known.get(c, "") for c in codes) if known else () for field, known in names.items()}
    return LabelSet(tuple(codes), **kept)


def check_method(method: str, *, allowed: Sequence[str] = METHODS) -> None:
    """Refuse a combination method not in ``allowed`` (a :class:`~birdcall.errors.ParameterError`)."""
    if method not in allowed:
        raise ParameterError(f"method must be one of {tuple(allowed)}, got {method!r}")


def check_power(power: float) -> float:
    """``power`` as a float, refused unless a finite number > 0."""
    try:
        value = float(power)
    except (TypeError, ValueError):
        raise ParameterError(f"power must be a number > 0, got {power!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"power must be a finite number > 0, got {power!r}")
    return value


def _normalise_weights(weights: Sequence[float] | None, n_members: int) -> np.ndarray:
    """``(n_members,)`` float64 weights summing to 1 (equal weights for None)."""
    if weights is None:
        return np.full(n_members, 1.0 / n_members)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"weights must be numbers, got {weights!r}") from None
    if w.shape != (n_members,):
        raise ParameterError(f"weights: expected {n_members} values (one per member), got {np.shape(weights)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ParameterError(f"weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise ParameterError(f"weights must not sum to zero, got {w.tolist()}")
    return w / w.sum()


def _species_weights(member_codes: Sequence[Sequence[str]], labels: LabelSet, weights: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-member column positions in ``labels`` and the ``(members, species)`` weights, renormalised per species
    over the members that predict it."""
    positions = [np.array([labels.index(c) for c in codes], dtype=np.intp) for codes in member_codes]
    table = np.zeros((len(member_codes), len(labels)))
    for m, pos in enumerate(positions):
        table[m, pos] = weights[m]
    totals = table.sum(axis=0)
    if np.any(totals <= 0):
        orphans = [labels.codes[j] for j in np.flatnonzero(totals <= 0)]
        raise ParameterError(f"species {orphans} are only predicted by members with weight 0")
    return table / totals, positions


def _weighted(values: Sequence[np.ndarray], positions: Sequence[np.ndarray], table: np.ndarray, *, method: str, power: float) -> np.ndarray:
    """Combine member score arrays ``(rows, member species)`` into ``(rows, union species)`` float64."""
    rows = values[0].shape[0] if values else 0
    out = np.zeros((rows, table.shape[1]))
    for m, (v, pos) in enumerate(zip(values, positions)):
        v = np.asarray(v, dtype=np.float64)
        out[:, pos] += table[m, pos] * (v**power if method == "power" else v)
    return out ** (1.0 / power) if method == "power" else out


def _rank01(values: np.ndarray) -> np.ndarray:
    """Per column, the average rank of each row scaled to [0, 1]: ``(rank - 1) / (rows - 1)``; a single row (or a
    column of ties) gets 0.5."""
    from scipy.stats import rankdata

    rows = values.shape[0]
    if rows == 0:
        return values.astype(np.float64)
    if rows == 1:
        return np.full(values.shape, 0.5)
    return (rankdata(values, method="average", axis=0) - 1.0) / (rows - 1.0)


def _check_index(frames: Sequence[pd.DataFrame]) -> None:
    first = frames[0].index
    for i, frame in enumerate(frames[1:], start=1):
        index = frame.index
        if index.equals(first) and list(index.names) == list(first.names):
            continue
        if list(index.names) != list(first.names):
            raise ParameterError(f"combine: frame {i} is indexed by {list(index.names)}, frame 0 by {list(first.names)}")
        if len(index) != len(first):
            raise ParameterError(f"combine: frame {i} has {len(index)} rows, frame 0 has {len(first)}")
        differ = next((r for r, (a, b) in enumerate(zip(index, first)) if a != b), 0)
        hint = " (same rows in another order: sort both with .sort_index())" if set(index) == set(first) else ""
        raise ParameterError(f"combine: frame {i} row {differ} is {index[differ]}, frame 0 has {first[differ]}{hint}")


def combine(
    frames: Sequence[pd.DataFrame],
    *,
    method: str = "mean",
    power: float = 2.0,
    weights: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Combine the prediction tables of several models or folds over the same windows.

    Args:
        frames: prediction tables with the same index (same rows in the same order) and one column per
            species code. Columns are aligned by code; a species missing from some members is combined over
            the members that have it.
        method: ``"mean"`` (weighted mean), ``"power"`` (``(weighted mean of p**power) ** (1/power)``, which
            favours confident members) or ``"rank"`` (per species, each member's scores are replaced by their
            average rank over all rows scaled to [0, 1], then the weighted mean is taken; the result orders
            rows but is no longer a probability).
        power: exponent of ``"power"``.
        weights: one non-negative weight per frame (normalised; None: equal weights).

    Returns:
        A table with the common index and the union of the species columns in first-seen order, float32 if
        every input column is float32, else float64.

    Raises:
        ParameterError: no frames, indexes that differ (the message names the first differing row), duplicated
            columns, invalid method, power or weights.

    Example:
        >>> index = pd.MultiIndex.from_tuples([("a.ogg", 0.0, 5.0)], names=["file", "start_time", "end_time"])
        >>> a = pd.DataFrame({"sp1": [0.2]}, index=index)
        >>> b = pd.DataFrame({"sp1": [0.8]}, index=index)
        >>> round(float(combine([a, b], method="power")["sp1"].iloc[0]), 6)  # sqrt((0.04 + 0.64) / 2)
        0.583095
    """
    check_method(method)
    power = check_power(power) if method == "power" else 1.0
    frames = list(frames)
    if not frames:
        raise ParameterError("combine: needs at least one prediction table")
    for i, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"combine: frame {i} is a {type(frame).__name__}, not a DataFrame")
        if frame.columns.has_duplicates:
            duplicates = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            raise ParameterError(f"combine: frame {i} has duplicated columns {duplicates}")
    w = _normalise_weights(weights, len(frames))
    _check_index(frames)
    member_codes = [[str(c) for c in frame.columns] for frame in frames]
    if not any(member_codes):
        raise ParameterError("combine: the frames have no species columns")
    labels = LabelSet(tuple(dict.fromkeys(c for codes in member_codes for c in codes)))
    table, positions = _species_weights(member_codes, labels, w)
    values = [frame.to_numpy(dtype=np.float64) for frame in frames]
    if method == "rank":
        values = [_rank01(v) for v in values]
    out = _weighted(values, positions, table, method=method, power=power)
    all_float32 = all(dtype == np.float32 for frame in frames for dtype in frame.dtypes)
    return pd.DataFrame(out.astype(np.float32 if all_float32 else np.float64), index=frames[0].index.copy(), columns=list(labels.codes))


class EnsembleScorer:
    """Several scorers as one :class:`~birdcall.infer.scorer.Scorer`: each batch of windows goes to every member
    and the scores are combined per window.

    Members must agree on ``sample_rate`` and ``clip_duration`` (they see the same windows); their other feature
    settings may differ, since each member computes its own features. ``features`` is the first member's
    config, so only its ``sample_rate`` and ``clip_duration`` describe the ensemble.

    Args:
        scorers: the members; each needs ``labels`` (a :class:`LabelSet`) and ``features``.
        method: ``"mean"`` or ``"power"`` as in :func:`combine` (rank averaging needs all rows: use
            :func:`combine` on the members' prediction tables).
        power: exponent of ``"power"``.
        weights: one non-negative weight per member (normalised; None: equal weights).

    Raises:
        ParameterError: no members, a member without labels or features, members whose ``sample_rate`` or
            ``clip_duration`` differ, ``method="rank"``, invalid power or weights.
    """

    def __init__(self, scorers: Sequence[Scorer], *, method: str = "mean", power: float = 2.0, weights: Sequence[float] | None = None):
        if method == "rank":
            raise ParameterError(
                "EnsembleScorer: rank averaging needs every window of a member at once; "
                "predict with each member and merge the tables with birdcall.infer.combine(frames, method='rank')"
            )
        check_method(method, allowed=("mean", "power"))
        self.method = method
        self.power = check_power(power) if method == "power" else 1.0
        self.scorers = list(scorers)
        if not self.scorers:
            raise ParameterError("EnsembleScorer: needs at least one scorer")
        for i, scorer in enumerate(self.scorers):
            if not isinstance(getattr(scorer, "labels", None), LabelSet):
                raise ParameterError(f"EnsembleScorer: member {i} has no LabelSet in .labels (got {getattr(scorer, 'labels', None)!r})")
            if not isinstance(getattr(scorer, "features", None), FeatureConfig):
                raise ParameterError(f"EnsembleScorer: member {i} has no FeatureConfig in .features")
        first = self.scorers[0].features
        for i, scorer in enumerate(self.scorers[1:], start=1):
            for name in ("sample_rate", "clip_duration"):
                if getattr(scorer.features, name) != getattr(first, name):
                    raise ParameterError(
                        f"EnsembleScorer: member {i} has {name}={getattr(scorer.features, name)}, member 0 has {getattr(first, name)}"
                    )
        self.weights = _normalise_weights(weights, len(self.scorers))
        self.labels: LabelSet = align_labels([s.labels for s in self.scorers])
        self.features: FeatureConfig = first
        self._table, self._positions = _species_weights([s.labels.codes for s in self.scorers], self.labels, self.weights)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """``(batch, num_samples)`` float32 windows -> ``(batch, len(self.labels))`` float32 combined probabilities."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ParameterError(f"EnsembleScorer: windows must be (batch, num_samples), got shape {windows.shape}")
        outputs = []
        for i, scorer in enumerate(self.scorers):
            out = np.asarray(scorer(windows))
            expected = (windows.shape[0], len(scorer.labels))
            if out.shape != expected:
                raise ParameterError(f"EnsembleScorer: member {i} returned shape {out.shape}, expected {expected}")
            outputs.append(out)
        return _weighted(outputs, self._positions, self._table, method=self.method, power=self.power).astype(np.float32)

    def __repr__(self) -> str:
        return f"EnsembleScorer({len(self.scorers)} members, method={self.method!r}, {len(self.labels)} species)"


def run_models(folder: Path) -> list[Path]:
    """The models of a training run folder: ``fold*/best.safetensors`` in fold order, each followed by its seed
    ensemble's ``fold*/seed*/best.safetensors`` in seed order; else ``[folder/best.safetensors]``
    (:meth:`birdcall.layout.RunLayout.models`)."""
    models = RunLayout(Path(folder)).models()
    if not models:
        raise CheckpointError(folder, "no model in this folder (expected fold*/best.safetensors or best.safetensors)")
    return models


def load_ensemble(
    model_dir_or_paths: Pathlike | Sequence[Pathlike],
    *,
    backend: str = "torch",
    threads: int | None = None,
    method: str = "mean",
    power: float = 2.0,
    weights: Sequence[float] | None = None,
    streams: int | None = None,
    frontend: str = "auto",
) -> EnsembleScorer:
    """Open the models of a training run (or a list of model files) as one :class:`EnsembleScorer`.

    Args:
        model_dir_or_paths: a run folder (every ``fold*/best.safetensors`` of a cross-validated run, in fold
            order; else its ``best.safetensors``), a single model file, or a list of model files.
        backend: passed to :func:`~birdcall.infer.scorer.load_scorer` for every member.
        threads: passed to :func:`~birdcall.infer.scorer.load_scorer` for every member.
        method: ``"mean"`` or ``"power"``, as in :class:`EnsembleScorer`.
        power: exponent of ``"power"``.
        weights: one weight per member, in the order above.
        streams: OpenVINO CPU streams of every member (:func:`~birdcall.infer.scorer.load_scorer`).
        frontend: where every exported member computes its STFT (:func:`~birdcall.infer.scorer.load_scorer`).

    Raises:
        CheckpointError: the folder holds no model, or a model file is missing or malformed.
        ParameterError: an empty list, members that cannot be combined, or an invalid backend, method or weights.
    """
    if isinstance(model_dir_or_paths, str) or hasattr(model_dir_or_paths, "__fspath__"):
        path = Path(model_dir_or_paths)
        paths = run_models(path) if path.is_dir() else [path]
    else:
        paths = [Path(p) for p in model_dir_or_paths]
        if not paths:
            raise ParameterError("load_ensemble: needs at least one model file")
    scorers = [load_scorer(p, backend=backend, threads=threads, streams=streams, frontend=frontend) for p in paths]
    return EnsembleScorer(scorers, method=method, power=power, weights=weights)
