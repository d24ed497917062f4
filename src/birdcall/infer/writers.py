"""Writers for prediction and detection tables.

* :func:`write_submission`: the BirdCLEF submission CSV (one row per window, one column per species).
* :func:`write_scores_parquet`: the same window scores keyed by file path and times, as Parquet with the run
  settings in its metadata (``run_inference(kind="scores")``); :func:`read_scores_parquet` reads it back.
* Detection tables (:func:`birdcall.infer.to_detections`): :func:`write_detections_csv`,
  :func:`write_detections_parquet`, :func:`write_raven` (Raven Pro selection table, laid out as
  BirdNET-Analyzer writes it) and :func:`write_audacity` (Audacity labels).

Every writer is atomic (:mod:`birdcall.fileio`): a reader sees the previous file or the complete new one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._validate import is_number
from ..audio import info as audio_info
from ..errors import DataError, ParameterError
from ..fileio import atomic_path, atomic_to_csv
from ..types import Hz, Pathlike
from .detections import DETECTION_COLUMNS

__all__ = [
    "DEFAULT_HIGH_FREQ",
    "RAVEN_COLUMNS",
    "RAVEN_FILE_COLUMNS",
    "SCORES_METADATA_KEY",
    "read_scores_parquet",
    "to_audacity",
    "to_raven",
    "to_submission",
    "write_audacity",
    "write_detections_csv",
    "write_detections_parquet",
    "write_raven",
    "write_scores_parquet",
    "write_submission",
]

# Raven selection-table columns in BirdNET-Analyzer's order (birdnet_analyzer/analyze/utils.py,
# RAVEN_TABLE_HEADER); a combined table over several files adds RAVEN_FILE_COLUMNS.
RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Common Name",
    "Species Code",
    "Confidence",
)
RAVEN_FILE_COLUMNS = ("Begin Path", "File Offset (s)")
SCORES_METADATA_KEY = "birdcall"  # Parquet key-value metadata of a scores table: the run settings, JSON
_SCORES_INDEX = ("file", "start_time", "end_time")
DEFAULT_HIGH_FREQ: Hz = 15_000.0  # BirdNET's upper frequency; pass the model's ``fmax`` instead when known
_TIME_DECIMALS = 6


def to_submission(scores: pd.DataFrame) -> pd.DataFrame:
    """BirdCLEF submission: ``row_id`` = ``<file stem>_<end second>`` then one column per species.

    ``scores`` is indexed by (file, start_time, end_time) as :func:`predict_file` returns it.
    """
    files = scores.index.get_level_values("file")
    ends = scores.index.get_level_values("end_time")
    row_id = [f"{Path(f).stem}_{int(round(e))}" for f, e in zip(files, ends)]
    out = pd.DataFrame(np.asarray(scores.values, dtype=np.float32), columns=scores.columns)
    out.insert(0, "row_id", row_id)
    return out


def write_submission(scores: pd.DataFrame, path: Pathlike) -> Path:
    """Write :func:`to_submission` of ``scores`` atomically.

    Raises:
        ParameterError: two rows would get the same ``row_id`` (two files with one stem, or windows whose ends
            round to the same second), which ``birdcall score`` and Kaggle reject; nothing is written.
    """
    table = to_submission(scores)
    repeated = pd.unique(table["row_id"][table["row_id"].duplicated()])
    if len(repeated):
        shown = ", ".join(map(str, repeated[:3])) + (f" and {len(repeated) - 3} more" if len(repeated) > 3 else "")
        raise ParameterError(f"{path}: row_id(s) {shown} would repeat (files sharing a stem, or windows ending in the same rounded second); not written")
    return atomic_to_csv(table, path, float_format="%.6g")


# --------------------------------------------------------------------------------------------------- scores


def write_scores_parquet(scores: pd.DataFrame, path: Pathlike, *, settings: dict | None = None) -> Path:
    """Write a prediction table as Parquet, atomically: ``file`` string, ``start_time`` and ``end_time`` float64,
    then one float32 column per species in the table's order, rows as given; ``settings`` (JSON) in the schema
    metadata under :data:`SCORES_METADATA_KEY`.

    Raises:
        ParameterError: ``scores`` is not indexed by (file, start_time, end_time), or a species column is named
            like an index level or repeated.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(scores, pd.DataFrame) or tuple(scores.index.names) != _SCORES_INDEX:
        raise ParameterError(f"{path}: expected a prediction table indexed by {list(_SCORES_INDEX)}")
    codes = [str(c) for c in scores.columns]
    if len(set(codes)) != len(codes) or set(codes) & set(_SCORES_INDEX):
        raise ParameterError(f"{path}: species columns must be distinct and not named {list(_SCORES_INDEX)}, got {codes}")
    index = scores.index
    arrays = [
        pa.array(index.get_level_values("file").astype(str), type=pa.string()),
        pa.array(index.get_level_values("start_time").to_numpy(np.float64)),
        pa.array(index.get_level_values("end_time").to_numpy(np.float64)),
    ] + [pa.array(scores.iloc[:, j].to_numpy(np.float32)) for j in range(len(codes))]
    fields = [("file", pa.string()), ("start_time", pa.float64()), ("end_time", pa.float64())] + [(c, pa.float32()) for c in codes]
    metadata = {SCORES_METADATA_KEY: json.dumps(settings or {}, ensure_ascii=False)}
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp))
    return Path(path)


def read_scores_parquet(path: Pathlike) -> tuple[pd.DataFrame, dict]:
    """A table of :func:`write_scores_parquet`: ``(scores, settings)``, ``scores`` indexed by (file, start_time,
    end_time) with one float32 column per species.

    Raises:
        DataError: not a readable Parquet file, or one without the scores columns or metadata.
    """
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(path, f"not a readable Parquet file ({' '.join(str(err).split())[:200]})") from None
    raw = (table.schema.metadata or {}).get(SCORES_METADATA_KEY.encode())
    try:
        settings = json.loads(raw.decode("utf-8")) if raw is not None else None
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise DataError(path, f"no birdcall scores metadata (key {SCORES_METADATA_KEY!r})")
    missing = [c for c in _SCORES_INDEX if c not in table.column_names]
    if missing:
        raise DataError(path, f"not a scores table: no column(s) {missing}")
    frame = table.to_pandas()
    codes = [c for c in frame.columns if c not in _SCORES_INDEX]
    frame = frame.astype({"start_time": np.float64, "end_time": np.float64, **{c: np.float32 for c in codes}})
    return frame.set_index(list(_SCORES_INDEX)), settings


# --------------------------------------------------------------------------------------------------- detections


def _detections(detections: pd.DataFrame) -> pd.DataFrame:
    """The detection columns of ``detections`` in canonical order and dtypes; ParameterError if any is missing."""
    if not isinstance(detections, pd.DataFrame):
        raise ParameterError(f"expected a detection table (DataFrame), got {type(detections).__name__}")
    missing = [c for c in DETECTION_COLUMNS if c not in detections.columns]
    if missing:
        raise ParameterError(f"detection table lacks column(s) {missing}; build it with to_detections")
    out = detections.loc[:, list(DETECTION_COLUMNS)].reset_index(drop=True)
    dtypes = {"start_time": np.float64, "end_time": np.float64, "confidence": np.float32}
    return out.astype({c: dtypes.get(c, "str") for c in DETECTION_COLUMNS})


def write_detections_csv(detections: pd.DataFrame, path: Pathlike) -> Path:
    """Write a detection table as CSV (columns :data:`DETECTION_COLUMNS`, header always), atomically.

    Raises:
        ParameterError: ``detections`` lacks a detection column.
    """
    return atomic_to_csv(_detections(detections), path)


def write_detections_parquet(detections: pd.DataFrame, path: Pathlike) -> Path:
    """Write a detection table as Parquet (pyarrow), atomically.

    The schema is fixed, so even a zero-row table reads back with its dtypes: ``file``, ``code``,
    ``scientific_name``, ``common_name`` string; ``start_time``, ``end_time`` float64; ``confidence`` float32.

    Raises:
        ParameterError: ``detections`` lacks a detection column.
    """
    import pyarrow as pa

    types = {"start_time": pa.float64(), "end_time": pa.float64(), "confidence": pa.float32()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in DETECTION_COLUMNS])
    frame = _detections(detections)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=False, schema=schema)
    return Path(path)


def _one_file(frame: pd.DataFrame, what: str) -> None:
    files = frame["file"].unique()
    if len(files) > 1:
        raise ParameterError(f"{what}: detections come from {len(files)} files; write one table per file (groupby 'file')")


def _file_offsets(files: list[str], durations: Mapping[str, float] | None) -> tuple[list[str], dict[str, float]]:
    """The file sequence of a combined table and each file's start time in it (s)."""
    if durations is None:
        sequence = files
        lengths = {f: audio_info(f).duration for f in files[:-1]}  # the last file's length never matters
    else:
        sequence = [str(f) for f in durations]
        lengths = {str(f): d for f, d in durations.items()}
        missing = sorted(set(files) - set(sequence))
        if missing:
            raise ParameterError(f"to_raven: durations lacks file(s) {missing}")
        bad = {f: d for f, d in lengths.items() if not (is_number(d) and math.isfinite(d) and d >= 0)}
        if bad:
            raise ParameterError(f"to_raven: durations must be finite seconds >= 0, got {bad}")
    offsets, total = {}, 0.0
    for f in sequence:
        offsets[f] = total
        total += float(lengths.get(f, 0.0))
    return sequence, offsets


def to_raven(
    detections: pd.DataFrame,
    *,
    low_freq: Hz = 0.0,
    high_freq: Hz | None = None,
    combined: bool | None = None,
    durations: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A Raven Pro selection table of ``detections``, laid out as BirdNET-Analyzer writes it.

    Columns :data:`RAVEN_COLUMNS`: ``Selection`` numbered from 1 in table order, ``View`` "Spectrogram 1",
    ``Channel`` 1, one box per detection from ``low_freq`` to ``high_freq``. A combined table (several
    recordings opened in Raven as one file sequence) adds :data:`RAVEN_FILE_COLUMNS`: ``Begin Path`` (the
    detection's ``file``) and ``File Offset (s)`` (its start inside that file), while ``Begin Time (s)`` and
    ``End Time (s)`` count from the start of the sequence.

    Args:
        detections: a detection table (:func:`birdcall.infer.to_detections`).
        low_freq: lower edge of every selection box, Hz.
        high_freq: upper edge, Hz (None: :data:`DEFAULT_HIGH_FREQ`; pass the model's ``fmax``).
        combined: add the file columns (None: when ``detections`` spans more than one file or ``durations``
            is given). Without them the table must hold a single file.
        durations: length in seconds of each file of the sequence, in sequence order; files absent from
            ``detections`` still shift the later ones. None: the sequence is the files of ``detections``
            in table order, their lengths read from the audio headers.

    Returns:
        DataFrame with the Raven columns; ``Confidence`` is float (the writer rounds it to 4 decimals).

    Raises:
        ParameterError: missing detection columns, ``low_freq >= high_freq``, several files without
            ``combined``, or ``durations`` lacking a file of ``detections``.
        AudioLoadError: ``durations`` is None and a file's header cannot be read.
    """
    frame = _detections(detections)
    high = DEFAULT_HIGH_FREQ if high_freq is None else float(high_freq)
    if not 0 <= low_freq < high:
        raise ParameterError(f"to_raven: need 0 <= low_freq < high_freq, got low_freq={low_freq}, high_freq={high}")
    files = list(pd.unique(frame["file"]))
    if combined is None:
        combined = len(files) > 1 or durations is not None
    if not combined:
        _one_file(frame, "to_raven(combined=False)")
    offset = np.zeros(len(frame))
    if combined and len(frame):
        sequence, offsets = _file_offsets(files, durations)
        position = frame["file"].map({f: i for i, f in enumerate(sequence)}).to_numpy(dtype=np.int64)
        frame = frame.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)
        offset = frame["file"].map(offsets).to_numpy(dtype=np.float64)
    n = len(frame)
    out = pd.DataFrame(
        {
            "Selection": np.arange(1, n + 1, dtype=np.int64),
            "View": pd.array(["Spectrogram 1"] * n, dtype="str"),
            "Channel": np.ones(n, dtype=np.int64),
            "Begin Time (s)": np.round(frame["start_time"].to_numpy() + offset, _TIME_DECIMALS),
            "End Time (s)": np.round(frame["end_time"].to_numpy() + offset, _TIME_DECIMALS),
            "Low Freq (Hz)": np.full(n, float(low_freq)),
            "High Freq (Hz)": np.full(n, high),
            "Common Name": frame["common_name"].to_numpy(),
            "Species Code": frame["code"].to_numpy(),
            "Confidence": frame["confidence"].to_numpy(),
        }
    )
    if combined:
        out["Begin Path"] = frame["file"].to_numpy()
        out["File Offset (s)"] = frame["start_time"].to_numpy()
    return out.astype({"Common Name": "str", "Species Code": "str", **({"Begin Path": "str"} if combined else {})})


def write_raven(
    detections: pd.DataFrame,
    path: Pathlike,
    *,
    low_freq: Hz = 0.0,
    high_freq: Hz | None = None,
    combined: bool | None = None,
    durations: Mapping[str, float] | None = None,
) -> Path:
    """Write :func:`to_raven` of ``detections`` as a tab-separated Raven selection table (``.txt``), atomically.

    ``Confidence`` is written with 4 decimals (as BirdNET-Analyzer does); an empty table writes the header only.
    """
    table = to_raven(detections, low_freq=low_freq, high_freq=high_freq, combined=combined, durations=durations)
    confidence = table["Confidence"].to_numpy(dtype=np.float64)
    table["Confidence"] = pd.array(np.char.mod("%.4f", confidence) if len(table) else [], dtype="str")
    return atomic_to_csv(table, path, sep="\t", lineterminator="\n")


def to_audacity(detections: pd.DataFrame) -> str:
    """Audacity label-track text: one ``start\\tend\\tcode (common name) confidence\\n`` line per detection.

    Times are seconds with 6 decimals, confidence has 4; ``(common name)`` is left out when the name is
    empty. No header; an empty table gives ``""``.

    Raises:
        ParameterError: missing detection columns, or detections from more than one file (a label track
            belongs to one recording).
    """
    frame = _detections(detections)
    _one_file(frame, "to_audacity")
    if not len(frame):
        return ""
    start = pd.Series(np.char.mod("%.6f", frame["start_time"].to_numpy()), dtype="str")
    end = pd.Series(np.char.mod("%.6f", frame["end_time"].to_numpy()), dtype="str")
    confidence = pd.Series(np.char.mod("%.4f", frame["confidence"].to_numpy(dtype=np.float64)), dtype="str")
    name = frame["common_name"].fillna("")
    label = frame["code"] + (" (" + name + ")").where(name != "", "") + " " + confidence
    return "".join(start + "\t" + end + "\t" + label + "\n")


def write_audacity(detections: pd.DataFrame, path: Pathlike) -> Path:
    """Write :func:`to_audacity` of ``detections`` (UTF-8), atomically."""
    text = to_audacity(detections)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
