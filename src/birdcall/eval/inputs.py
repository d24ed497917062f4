"""What an evaluation report is made from, gathered from one of three kinds of input.

* :func:`from_submission`: a BirdCLEF solution + submission pair (optionally with the soundscapes, for the
  error gallery's audio);
* :func:`from_model`: a model and labelled data (a BirdCLEF-layout data set of clips, or soundscapes with
  their solution): it predicts, then evaluates;
* :func:`from_run`: a training run folder: the out-of-fold scores of every fold (``oof.csv``), with the
  embeddings of each clip computed by its own fold's model.

Each returns an :class:`EvalInputs`. What an input kind cannot provide (primary labels for soundscape windows,
audio without a data folder, embeddings without a torch model, a training history) is left as None and the
report says so.

Clip data is scored as training validates it: the first ``clip_duration`` seconds of each clip, zero padded.

(Over 500 lines: three input kinds with shared scoring and embedding helpers; one module per kind is
the next split.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._threads import keeps_torch_threads
from ..data.labels import LabelSet
from ..errors import CheckpointError, DataError, ParameterError
from ..features import FeatureConfig
from ..layout import FOLD_PREFIX, OOF, DatasetLayout, RunLayout
from ..types import Pathlike
from .submission import ROW_ID, read_solution, read_submission, score_submission

__all__ = ["EvalInputs", "WindowRef", "from_model", "from_run", "from_submission", "read_window"]

KINDS = ("submission", "model", "run")
OOF_META_COLUMNS = ("filename", "epoch", "fold")
"""Columns of ``oof.csv`` that are not species scores."""


@dataclass(frozen=True)
class WindowRef:
    """Where the audio of one evaluated sample is: ``duration`` seconds of ``path`` from ``start_time``."""

    path: Path
    start_time: float
    duration: float


def read_window(ref: WindowRef, *, sample_rate: int, pad: str = "zero") -> np.ndarray:
    """The window's audio, mono float32 at ``sample_rate``, padded (``"zero"`` or ``"wrap"``, as the model's
    ``FeatureConfig.pad``) to exactly ``duration`` seconds.

    Raises:
        AudioLoadError: the file cannot be read (or the window starts past its end).
    """
    from ..audio import load
    from ..features import crop_or_pad

    y = load(ref.path, sample_rate=sample_rate, offset=ref.start_time, duration=ref.duration)
    return crop_or_pad(y, num_samples=max(1, round(ref.duration * sample_rate)), mode="start", pad=pad)


@dataclass(frozen=True)
class EvalInputs:
    """Truth, scores and everything else a report can show.

    Attributes:
        kind: ``"submission"``, ``"model"`` or ``"run"``.
        y_true: ``(n, c)`` int8 0/1 labels.
        y_score: ``(n, c)`` float64 scores.
        labels: the ``c`` species, in column order.
        sample_ids: ``n`` names of the samples (row ids of soundscape windows, file names of clips).
        primary: ``(n,)`` int64 primary-label index of each clip (-1: none), None for soundscape windows.
        windows: ``n`` window references (None where the audio is unknown), or None without audio.
        embeddings: ``(m, d)`` float32 penultimate embeddings of the rows ``embedding_rows``, or None.
        embedding_rows: ``(m,)`` int64 sample indices of ``embeddings``.
        embedding_source: what computed the embeddings (shown in the report).
        history: training metrics per epoch (``epoch``, optional ``fold``, loss and metric columns), or None.
        features: the model's feature settings (the gallery draws its log-mel with them), or None.
        source: what was evaluated, as ``name -> path`` (shown in the report and ``metrics.json``).
        notes: sentences for the report about what was skipped or left out.
    """

    kind: str
    y_true: np.ndarray
    y_score: np.ndarray
    labels: LabelSet
    sample_ids: tuple[str, ...]
    primary: np.ndarray | None = None
    windows: tuple[WindowRef | None, ...] | None = None
    embeddings: np.ndarray | None = None
    embedding_rows: np.ndarray | None = None
    embedding_source: str = ""
    history: pd.DataFrame | None = field(default=None, repr=False)
    features: FeatureConfig | None = None
    source: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"EvalInputs: kind must be one of {KINDS}, got {self.kind!r}")
        truth = np.asarray(self.y_true)
        score = np.asarray(self.y_score, dtype=np.float64)
        shape = (len(self.sample_ids), len(self.labels))
        if truth.shape != shape or score.shape != shape:
            raise ParameterError(f"EvalInputs: y_true {truth.shape} and y_score {score.shape} must both be {shape} (samples, species)")
        object.__setattr__(self, "y_true", truth.astype(np.int8))
        object.__setattr__(self, "y_score", score)
        object.__setattr__(self, "sample_ids", tuple(str(s) for s in self.sample_ids))
        if self.primary is not None:
            primary = np.asarray(self.primary, dtype=np.int64)
            if primary.shape != (shape[0],):
                raise ParameterError(f"EvalInputs: primary must have shape ({shape[0]},), got {primary.shape}")
            object.__setattr__(self, "primary", primary)
        if self.windows is not None and len(self.windows) != shape[0]:
            raise ParameterError(f"EvalInputs: {len(self.windows)} windows for {shape[0]} samples")
        if (self.embeddings is None) != (self.embedding_rows is None):
            raise ParameterError("EvalInputs: embeddings and embedding_rows go together")
        if self.embeddings is not None:
            rows = np.asarray(self.embedding_rows, dtype=np.int64)
            if np.ndim(self.embeddings) != 2 or len(self.embeddings) != len(rows) or (rows.size and (rows.min() < 0 or rows.max() >= shape[0])):
                raise ParameterError("EvalInputs: embeddings must be (m, d) with m sample indices in embedding_rows")
            object.__setattr__(self, "embedding_rows", rows)
        object.__setattr__(self, "notes", tuple(self.notes))


# ------------------------------------------------------------------------------------------------ helpers


def _align(solution: pd.DataFrame, submission: pd.DataFrame, solution_name: Pathlike, submission_name: Pathlike) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``(row_ids, species, y_true, y_score)`` of a submission aligned to its solution (rows and columns)."""
    # score_submission raises the DataErrors of a mismatch (missing species or rows), naming the file.
    score_submission(solution, submission, solution_name=solution_name, submission_name=submission_name)
    species = [str(c) for c in solution.columns if c != ROW_ID]
    row_ids = solution[ROW_ID].astype(str).tolist()
    indexed = submission.set_index(submission[ROW_ID].astype(str))
    y_true = solution[species].to_numpy(dtype=np.int8)
    y_score = indexed.loc[row_ids, species].to_numpy(dtype=np.float64)
    return row_ids, species, y_true, y_score


def _soundscape_windows(row_ids: Sequence[str], audio: Pathlike, *, clip_duration: float) -> tuple[tuple[WindowRef | None, ...], list[str]]:
    """Window of each ``<stem>_<end second>`` row id in the audio files under ``audio``."""
    from ..infer.inputs import discover_inputs

    by_stem: dict[str, Path] = {}
    for path in discover_inputs([audio]):
        by_stem.setdefault(path.stem, path)
    windows: list[WindowRef | None] = []
    for row_id in row_ids:
        stem, _, end = row_id.rpartition("_")
        try:
            end_time = float(end)
        except ValueError:
            end_time = float("nan")
        path = by_stem.get(stem)
        ok = path is not None and np.isfinite(end_time) and end_time > 0
        windows.append(WindowRef(path, max(0.0, end_time - clip_duration), clip_duration) if ok else None)
    missing = sum(w is None for w in windows)
    notes = [f"{missing} of {len(windows)} rows have no audio file under {audio} (matched by row_id <stem>_<end second>)."] if missing else []
    return tuple(windows), notes


def _history(folder: Path) -> pd.DataFrame | None:
    """``fold*/metrics.csv`` of a run folder with a ``fold`` column, else its own ``metrics.csv``, else None."""
    layout = RunLayout(folder)
    frames = [pd.read_csv(fold.metrics).assign(fold=fold.number) for fold in layout.folds() if fold.metrics.is_file()]
    if frames:
        return pd.concat(frames, ignore_index=True)
    return pd.read_csv(layout.metrics) if layout.metrics.is_file() else None


def _checkpoints(folder: Path) -> list[Path]:
    """``fold*/best.safetensors`` in fold order, else ``[best.safetensors]``, else ``[]``."""
    return RunLayout(folder).models()  # the rule the ensemble reads a run folder's models by


def _named_labels(codes: Sequence[str], *candidates: LabelSet | None) -> LabelSet:
    """``LabelSet(codes)`` with the names of the first candidate that has exactly these codes and names."""
    for candidate in candidates:
        if candidate is not None and candidate.codes == tuple(codes) and (candidate.scientific_names or candidate.common_names):
            return candidate
    return LabelSet(tuple(codes))


def _clip_truth(table, labels: LabelSet, filenames: Sequence[str], *, where: Pathlike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(y_true, primary, notes)`` of the clips ``filenames`` from a :class:`~birdcall.data.ClipTable`."""
    frame = table.frame.set_index("filename")
    missing = [f for f in filenames if f not in frame.index]
    if missing:
        dropped = f" (or were dropped as bad rows: {len(table.problems)})" if table.problems else ""
        raise DataError(where, f"{len(missing)} clip(s) are not in {DatasetLayout(table.root).train_metadata}{dropped}, e.g. {missing[:3]}")
    rows = frame.loc[list(filenames)]
    unknown = sorted({c for codes in rows["labels"] for c in codes if c not in labels})
    y_true = labels.encode([[c for c in codes if c in labels] for codes in rows["labels"]]).astype(np.int8)
    primary = np.array([labels.index(c) if c in labels else -1 for c in rows["primary_label"]], dtype=np.int64)
    notes = [f"Labels of species the scores do not cover were ignored: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}."] if unknown else []
    return y_true, primary, notes


def _table_notes(table) -> list[str]:
    if not table.problems:
        return []
    return [f"{len(table.problems)} bad metadata row(s) were left out, e.g. {table.problems[0][0]}: {table.problems[0][1]}."]


def _embed_rows(rows: np.ndarray, windows: Sequence[WindowRef | None], model, *, batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embeddings of the samples ``rows`` that have readable audio: ``(embeddings, kept rows, notes)``."""
    from ..errors import AudioLoadError
    from .embeddings import embed_windows

    sample_rate = model.feature_config.sample_rate
    kept, chunks, failed = [], [], []
    batch_rows, batch = [], []

    def flush() -> None:
        if batch:
            chunks.append(embed_windows(model, np.stack(batch), batch_size=batch_size)[0])
            kept.extend(batch_rows)
            batch.clear()
            batch_rows.clear()

    for row in rows:
        ref = windows[row]
        if ref is None:
            continue
        try:
            batch.append(read_window(ref, sample_rate=sample_rate, pad=model.feature_config.pad))
        except AudioLoadError as err:
            failed.append(str(err))
            continue
        batch_rows.append(int(row))
        if len(batch) == batch_size:
            flush()
    flush()
    notes = [f"{len(failed)} window(s) could not be read for the embeddings, e.g. {failed[0]}."] if failed else []
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), notes
    return np.concatenate(chunks), np.asarray(kept, dtype=np.int64), notes


def _read_features(run_dir: Path, checkpoints: Sequence[Path]) -> FeatureConfig | None:
    from ..config import from_dict
    from ..models import read_model_info

    for path in checkpoints:
        try:
            return from_dict(FeatureConfig, read_model_info(path)["features"])
        except (CheckpointError, KeyError, TypeError):
            continue
    config = RunLayout(run_dir).config
    if config.is_file():
        import yaml

        try:
            return from_dict(FeatureConfig, (yaml.safe_load(config.read_text()) or {}).get("features", {}))
        except (yaml.YAMLError, TypeError, ParameterError):
            return None
    return None


# ------------------------------------------------------------------------------------------------ input kinds


def from_submission(solution: Pathlike, submission: Pathlike, *, audio: Pathlike | None = None, clip_duration: float = 5.0) -> EvalInputs:
    """Evaluate a BirdCLEF submission CSV against its solution CSV.

    Args:
        solution: solution CSV (``row_id`` + one 0/1 column per species).
        submission: submission CSV (``row_id`` + one score column per species); extra rows and columns are ignored.
        audio: folder (or file) of the soundscapes, to listen to the error gallery's windows; row id
            ``<stem>_<end second>`` names the window ``[end - clip_duration, end)`` of the file ``<stem>.*``.
        clip_duration: window length in seconds.

    Returns:
        :class:`EvalInputs` of kind ``"submission"`` (no primary labels, embeddings or history).

    Raises:
        DataError: a malformed file, or a submission that lacks solution rows or species.
        ParameterError: ``audio`` does not exist or holds no audio file.
    """
    solution_frame, submission_frame = read_solution(solution), read_submission(submission)
    row_ids, species, y_true, y_score = _align(solution_frame, submission_frame, solution, submission)
    windows, notes = (None, []) if audio is None else _soundscape_windows(row_ids, audio, clip_duration=clip_duration)
    source = {"solution": str(solution), "submission": str(submission), **({"audio": str(audio)} if audio is not None else {})}
    return EvalInputs("submission", y_true, y_score, LabelSet(tuple(species)), tuple(row_ids), windows=windows, source=source, notes=tuple(notes))


def _open_model(model: Path, threads: int | None):
    """``(scorer, torch model for embeddings or None, its path, model folder for the history)``."""
    from ..infer import load_ensemble, load_scorer
    from ..infer.models import suffix_backend
    from ..models import load_model

    if model.is_dir():
        checkpoints = _checkpoints(model)
        if not checkpoints:
            raise CheckpointError(model, "no model in this folder (expected fold*/best.safetensors or best.safetensors)")
        if len(checkpoints) == 1:
            scorer = load_scorer(checkpoints[0], threads=threads)
            return scorer, scorer.model, checkpoints[0], model
        return load_ensemble(model, threads=threads), load_model(checkpoints[0])[0], checkpoints[0], model
    backend = suffix_backend(model)
    if backend == "torch":
        scorer = load_scorer(model, threads=threads)
        return scorer, scorer.model, model, model.parent
    if backend is None:
        raise ParameterError(f"{model}: expected a .safetensors checkpoint, a run folder, an .onnx or an OpenVINO .xml model")
    return load_scorer(model, backend=backend, threads=threads), None, None, model.parent


def _soundscape_source(data: Path, solution: Pathlike | None) -> tuple[Path, Path]:
    """``(audio folder or file, solution CSV)`` of soundscape data."""
    audio = DatasetLayout(data).soundscapes if DatasetLayout(data).soundscapes.is_dir() else data
    if solution is not None:
        return audio, Path(solution)
    folder = data if data.is_dir() else data.parent
    for candidate in (DatasetLayout(folder).solution, DatasetLayout(folder.parent).solution):
        if candidate.is_file():
            return audio, candidate
    raise ParameterError(f"{data}: no train_metadata.csv (clips) nor solution.csv (soundscapes) found; give the soundscapes' solution")


@keeps_torch_threads
def from_model(
    model: Pathlike,
    data: Pathlike,
    *,
    solution: Pathlike | None = None,
    batch_size: int = 32,
    threads: int | None = None,
    embeddings: bool = True,
    max_embeddings: int = 2000,
    show_progress: bool = False,
) -> EvalInputs:
    """Predict labelled data with a model, for evaluation.

    ``data`` is either a BirdCLEF-layout data set (``train_metadata.csv``: every clip's first window is scored,
    with primary labels) or soundscapes with a solution (a folder of audio, or a data set root with
    ``soundscapes/``; the solution is ``solution`` or the ``solution.csv`` beside them): every window of every
    soundscape is predicted as ``birdcall predict`` does, then aligned with the solution by row id (so the model's
    ``clip_duration`` must be the solution's window length, 5 s in BirdCLEF).

    Args:
        model: a ``.safetensors`` checkpoint, a training run folder (its folds averaged), an ``.onnx`` or an
            OpenVINO ``.xml`` file.
        data: the labelled data (see above).
        solution: the soundscapes' solution CSV; giving it selects soundscape evaluation.
        batch_size: windows per model call.
        threads: intra-op threads of the backend.
        embeddings: compute penultimate embeddings (torch checkpoints only; a run folder uses its first fold).
        max_embeddings: at most this many samples (drawn at random with a fixed seed) get an embedding.
        show_progress: progress bar while predicting soundscapes.

    Returns:
        :class:`EvalInputs` of kind ``"model"``.

    Raises:
        CheckpointError: the model cannot be read.
        DataError: malformed metadata or solution, or predictions that do not cover the solution.
        ParameterError: ``data`` is neither kind, or an invalid argument.
    """
    from .embeddings import subsample

    model, data = Path(model), Path(data)
    if not data.exists():
        raise ParameterError(f"{data}: no such file or folder")
    scorer, torch_model, torch_path, model_dir = _open_model(model, threads)
    features: FeatureConfig = scorer.features
    labels: LabelSet = scorer.labels
    notes: list[str] = []
    source = {"model": str(model), "data": str(data)}
    if solution is None and DatasetLayout(data).train_metadata.is_file():
        y_true, y_score, sample_ids, primary, windows, emb, rows, more = _predict_clips(
            scorer, torch_model, data, labels, features, batch_size=batch_size, embeddings=embeddings, max_embeddings=max_embeddings
        )  # fmt: skip
        notes += more
    else:
        audio, solution_path = _soundscape_source(data, solution)
        source["solution"] = str(solution_path)
        sample_ids, labels, y_true, y_score, windows, more = _predict_soundscapes(
            scorer, audio, solution_path, features, batch_size=batch_size, show_progress=show_progress
        )  # fmt: skip
        notes += more
        primary, emb, rows = None, None, None
        if embeddings and torch_model is not None:
            emb, rows, more = _embed_rows(subsample(len(sample_ids), max_embeddings), windows, torch_model, batch_size=batch_size)
            notes += more
    if embeddings and torch_model is None:
        notes.append("The model is not a torch checkpoint, so there are no penultimate embeddings.")
    if emb is not None and len(rows) == 0:
        emb = rows = None
    history = _history(model_dir) if model_dir is not None and model_dir.is_dir() else None
    return EvalInputs(
        "model", y_true, y_score, labels, tuple(sample_ids), primary=primary, windows=windows, embeddings=emb, embedding_rows=rows,
        embedding_source=f"penultimate layer of {torch_path}" if emb is not None else "", history=history, features=features,
        source=source, notes=tuple(notes),
    )  # fmt: skip


def _predict_clips(scorer, torch_model, data: Path, labels: LabelSet, features: FeatureConfig, *, batch_size: int, embeddings: bool, max_embeddings: int):
    """Score the first window of every clip; one forward pass gives scores and embeddings for a lone checkpoint."""
    from ..data import read_clip_table
    from .embeddings import embed_windows, subsample

    table = read_clip_table(data, skip_bad=True)
    notes = _table_notes(table)
    filenames = table.frame["filename"].tolist()
    y_true, primary, more = _clip_truth(table, labels, filenames, where=DatasetLayout(data).train_metadata)
    notes += more
    windows = tuple(WindowRef(Path(p), 0.0, features.clip_duration) for p in table.frame["path"])
    chosen = set(subsample(len(filenames), max_embeddings).tolist()) if embeddings and torch_model is not None else set()
    one_pass = getattr(scorer, "model", None) is torch_model and torch_model is not None
    scores, emb, rows = [], [], []
    for start in range(0, len(windows), batch_size):
        batch = np.stack([read_window(w, sample_rate=features.sample_rate, pad=features.pad) for w in windows[start : start + batch_size]])
        picked = [i for i in range(len(batch)) if start + i in chosen]
        if one_pass:
            batch_emb, batch_scores = embed_windows(torch_model, batch, batch_size=batch_size)
            emb.append(batch_emb[picked])
        else:
            batch_scores = np.asarray(scorer(batch))
            if picked:
                emb.append(embed_windows(torch_model, batch[picked], batch_size=batch_size)[0])
        scores.append(batch_scores)
        rows += [start + i for i in picked]
    y_score = np.concatenate(scores).astype(np.float64)
    embedded = np.concatenate(emb) if rows else None
    return y_true, y_score, filenames, primary, windows, embedded, np.asarray(rows, dtype=np.int64) if rows else None, notes


def _predict_soundscapes(scorer, audio: Path, solution: Path, features: FeatureConfig, *, batch_size: int, show_progress: bool):
    from ..infer import WindowSpec, discover_inputs, predict_files, to_submission

    solution_frame = read_solution(solution)
    spec = WindowSpec(features.sample_rate, features.clip_duration, pad=features.pad)
    result = predict_files(scorer, discover_inputs([audio]), labels=scorer.labels, spec=spec, batch_size=batch_size, show_progress=show_progress)
    notes = [f"{len(result.errors)} soundscape(s) could not be read, e.g. {result.errors[0][0]}: {result.errors[0][1]}."] if result.errors else []
    submission = to_submission(result.scores)
    row_ids, species, y_true, y_score = _align(solution_frame, submission, solution, f"predictions of {audio}")
    starts = result.scores.index.get_level_values("start_time")
    ends = result.scores.index.get_level_values("end_time")
    refs = {row: WindowRef(Path(f), float(s), float(e - s)) for row, f, s, e in zip(submission[ROW_ID], result.scores.index.get_level_values("file"), starts, ends)}
    labels = _named_labels(species, scorer.labels)
    return row_ids, labels, y_true, y_score, tuple(refs[r] for r in row_ids), notes


def _read_oof(run_dir: Path) -> tuple[pd.DataFrame, Path]:
    layout = RunLayout(run_dir)
    pooled = layout.oof
    if pooled.is_file():
        oof = pd.read_csv(pooled)
        if "fold" not in oof.columns:  # a hold-out run: one model, no folds
            oof["fold"] = -1
        return oof, pooled
    parts = [pd.read_csv(fold.oof).assign(fold=fold.number) for fold in layout.folds() if fold.oof.is_file()]
    if not parts:
        raise DataError(run_dir, f"no {OOF} (nor {FOLD_PREFIX}*/{OOF}): not a training run folder, or no epoch finished")
    return pd.concat(parts, ignore_index=True), run_dir / f"{FOLD_PREFIX}*" / OOF


def from_run(
    run_dir: Pathlike,
    *,
    data: Pathlike | None = None,
    embeddings: bool = True,
    max_embeddings: int = 2000,
    batch_size: int = 32,
) -> EvalInputs:
    """The out-of-fold predictions of a training run (``oof.csv``), for evaluation.

    Truth comes from ``data`` (the run's BirdCLEF-layout data set: labels, primary labels and audio) or, without
    it, from the run's ``folds.csv`` (labels only: no primary label, no audio). Each clip's embedding is
    computed by the model of the fold that held it out (``fold<i>/best.safetensors``), the model that scored
    it in ``oof.csv``.

    Args:
        run_dir: a folder written by ``birdcall train`` (with or without ``--folds``).
        data: the data set the run was trained on.
        embeddings: compute penultimate embeddings (needs ``data`` for the audio).
        max_embeddings: at most this many clips (drawn at random with a fixed seed) get an embedding.
        batch_size: windows per forward pass.

    Returns:
        :class:`EvalInputs` of kind ``"run"`` with the training history of every fold.

    Raises:
        DataError: no ``oof.csv``, or clips of it missing from the data set.
        ParameterError: neither ``data`` nor ``folds.csv`` gives the labels, or ``run_dir`` is not a folder.
        CheckpointError: a fold's model file is malformed.
    """
    from ..data import read_clip_table
    from ..models import load_model
    from .embeddings import subsample

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ParameterError(f"{run_dir}: not a folder (expected a training run folder)")
    layout = RunLayout(run_dir)
    oof, oof_path = _read_oof(run_dir)
    if "filename" not in oof.columns:
        raise DataError(oof_path, "no 'filename' column")
    codes = [str(c) for c in oof.columns if c not in OOF_META_COLUMNS]
    if not codes:
        raise DataError(oof_path, "no species columns")
    checkpoints = _checkpoints(run_dir)
    features = _read_features(run_dir, checkpoints)
    model_labels = None
    if checkpoints:
        from ..models import read_model_info

        model_labels = LabelSet.from_dict(read_model_info(checkpoints[0])["labels"])
    filenames = oof["filename"].astype(str).tolist()
    y_score = oof[codes].to_numpy(dtype=np.float64)
    notes: list[str] = []
    source = {"run": str(run_dir)}
    primary = windows = None
    if data is not None:
        table = read_clip_table(data, skip_bad=True)
        notes += _table_notes(table)
        labels = _named_labels(codes, model_labels, table.labels)
        y_true, primary, more = _clip_truth(table, labels, filenames, where=oof_path)
        notes += more
        frame = table.frame.set_index("filename")
        duration = features.clip_duration if features is not None else 5.0
        windows = tuple(WindowRef(Path(p), 0.0, duration) for p in frame.loc[filenames, "path"])
        source["data"] = str(data)
    elif layout.folds_csv.is_file():
        folds = pd.read_csv(layout.folds_csv, dtype={"labels": str}, keep_default_na=False).set_index("filename")
        missing = [f for f in filenames if f not in folds.index]
        if missing:
            raise DataError(layout.folds_csv, f"{len(missing)} clip(s) of {oof_path} are not listed, e.g. {missing[:3]}")
        labels = _named_labels(codes, model_labels)
        lists = [str(v).split() for v in folds.loc[filenames, "labels"]]
        y_true = labels.encode([[c for c in codes_ if c in labels] for codes_ in lists]).astype(np.int8)
        notes.append("Labels come from the run's folds.csv; without the data set (--data) there are no primary labels and no audio.")
    else:
        raise ParameterError(f"{run_dir}: no folds.csv to take the labels from; give the run's data set (--data)")

    emb = rows = None
    embedding_source = ""
    if embeddings and windows is not None:
        emb, rows, more = _embed_folds(oof["fold"].to_numpy(), windows, run_dir, subsample(len(filenames), max_embeddings), batch_size=batch_size,
                                       load=lambda path: load_model(path)[0])  # fmt: skip
        notes += more
        embedding_source = "penultimate layer of each clip's own fold model (fold<i>/best.safetensors)"
        if len(rows) == 0:
            emb = rows = None
    history = _history(run_dir)
    if history is None:
        notes.append("The run folder has no metrics.csv: no training curves.")
    return EvalInputs(
        "run", y_true, y_score, labels, tuple(filenames), primary=primary, windows=windows, embeddings=emb, embedding_rows=rows,
        embedding_source=embedding_source, history=history, features=features, source=source, notes=tuple(notes),
    )  # fmt: skip


def _embed_folds(folds: np.ndarray, windows, run_dir: Path, chosen: np.ndarray, *, batch_size: int, load) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embeddings of the rows ``chosen``, each by the model of its fold (``fold == -1``: the run's own model)."""
    parts, kept, notes = [], [], []
    layout = RunLayout(run_dir)
    for fold in sorted(set(folds[chosen].tolist())):
        path = layout.best if fold < 0 else layout.fold(fold).best
        if not path.is_file():
            notes.append(f"No {path.relative_to(run_dir)}: the clips of fold {fold} have no embedding.")
            continue
        rows = chosen[folds[chosen] == fold]
        emb, rows_kept, more = _embed_rows(rows, windows, load(path), batch_size=batch_size)
        notes += more
        if len(rows_kept):
            parts.append(emb)
            kept.append(rows_kept)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), notes
    rows = np.concatenate(kept)
    order = np.argsort(rows, kind="stable")
    return np.concatenate(parts)[order], rows[order], notes
