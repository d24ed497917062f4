"""Pseudo-labels (``birdcall pseudo-label``): soft labels per window of unlabelled recordings, from one teacher
or an ensemble; the one owner of the LABELS.parquet layout (:func:`pseudo_label` writes it,
:func:`read_pseudo_labels` reads it).

Layout of LABELS.parquet (one row per window, files in sorted order, each file's windows in time order)::

    file      string     the recording, relative to the input root, '/'-separated (never absolute, never '..')
    start     double     seconds, the window's start in the recording
    end       double     seconds, start + the teachers' clip duration
    <code>    float      one column per species code, in the order of the metadata's labels: the teachers'
                         combined probability, in [0, 1]

The Parquet key-value metadata holds, under the key ``birdcall.pseudo_labels``, one JSON object::

    format         "birdcall.pseudo_labels/1"
    labels         LabelSet.to_dict() of the species columns (codes, scientific and common names)
    teachers       one entry per teacher, in the order given: path (as given), digest (sha256 of its model
                   file(s), as the inference engine identifies a model), model ("<arch>/<backbone>" from the
                   model header; a run folder's first fold's), sample_rate (Hz it decoded at), license and
                   note (the BirdNET licence and its non-commercial note when the teacher, or any teacher it
                   learnt from, is BirdNET-based; else None)
    method, power  how the teachers were combined (:func:`birdcall.infer.ensemble.combine`); power is None
                   unless method is "power"
    clip_duration  seconds, every window's length
    hop            seconds between window starts
    root           the input root the file names are relative to, when written (informational: a reader is
                   given its own trusted root)
    windows, files, skipped   rows, files labelled, files left out (failed in a teacher)
    note           the non-commercial note when any teacher is BirdNET-based, else None

State folder ``.<name>.parts/`` beside LABELS.parquet (resumable: a rerun of the same command goes on where a
killed run stopped, teacher by teacher and, inside a teacher, file by file)::

    teacher<i>.parquet            teacher i's window scores: a ``scores`` run of :mod:`birdcall.infer.run`
    .teacher<i>.parquet.parts/    that run's state (run.json, manifest, parts, errors.csv)
    errors.csv                    file (absolute), reason: every file left out of LABELS.parquet
    .lock                         held while a pseudo-label run uses the folder

Each teacher decodes the recordings at its own sample rate (a 48 kHz BirdNET-based model beside a 32 kHz CNN),
so the teachers must agree on the clip duration and on the window grid (the hop a whole number of samples at
each rate); rows present in every teacher's table are combined, aligned on (file, start, end).

(Over 500 lines: it is the one owner of the LABELS.parquet layout, its writer and its reader; the scoring is the
engine's, :func:`~birdcall.infer.run.run_inference`.)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

from .._threads import keeps_torch_threads
from ..birdnet.model import BIRDNET_LICENSE, NON_COMMERCIAL_NOTE
from ..data.labels import LabelSet
from ..errors import BirdcallError, DataError, ParameterError
from ..fileio import atomic_path, atomic_to_csv, remove_stale_temporaries
from ..types import Pathlike
from .ensemble import align_labels, check_method, check_power, combine
from .inputs import discover_inputs
from .long_recording import WindowSpec
from .models import model_digest, model_header, model_licences
from .run import EngineOptions, RunSummary, WindowOptions, run_inference
from .run_state import OutputWriteError

__all__ = ["FORMAT", "KEY_COLUMNS", "METADATA_KEY", "PseudoLabelSummary", "PseudoLabels", "pseudo_label", "read_pseudo_labels", "state_dir", "teacher_entry"]

FORMAT = "birdcall.pseudo_labels/1"
METADATA_KEY = "birdcall.pseudo_labels"
KEY_COLUMNS = ("file", "start", "end")
_INDEX = ["file", "start_time", "end_time"]  # the index of the teachers' score tables
_RESUME_HINT = "the teachers' scores are kept: rerun the same command to finish"
_SHOWN = 3  # missing files named in an error


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class PseudoLabelSummary:
    """What :func:`pseudo_label` did.

    Attributes:
        files: input files.
        windows: rows written (windows labelled by every teacher).
        skipped: files left out (failed in a teacher), listed in ``errors``.
        resumed: files every teacher had finished or failed in an earlier run (the smallest count over the teachers).
        errors: ``(file, reason)`` of every file left out; the reason names the teacher(s).
        out: the LABELS.parquet written.
        state_dir: the folder with the teachers' score tables, their run states and errors.csv.
        teachers: each teacher's :class:`~birdcall.infer.run.RunSummary`.
        note: the non-commercial note when a teacher is BirdNET-based, else None.
        complete: every teacher's run is complete (always, as no shards are run).
        missing: what keeps a teacher's run incomplete, ``"teacher <i>: ..."``.
    """

    files: int
    windows: int
    skipped: int
    resumed: int
    errors: tuple[tuple[str, str], ...]
    out: Path
    state_dir: Path
    teachers: tuple[RunSummary, ...]
    note: str | None
    complete: bool = True
    missing: tuple[str, ...] = ()

    def line(self) -> str:
        """``"N files, M windows, K skipped"``."""
        return f"{self.files} files, {self.windows} windows, {self.skipped} skipped"


@dataclass(frozen=True, eq=False)
class PseudoLabels:
    """A LABELS.parquet in memory, validated (:func:`read_pseudo_labels`).

    Attributes:
        files: one per row: the audio root joined with the row's file name (checked to lie inside the root, with
            symlinks followed, and to exist).
        start: ``(n,)`` float64 seconds.
        end: ``(n,)`` float64 seconds.
        probs: ``(n, len(labels))`` float32 probabilities in [0, 1], columns in ``labels`` order.
        labels: the species of the columns.
        metadata: the ``birdcall.pseudo_labels`` metadata (format, teachers, method...).
    """

    files: tuple[Path, ...]
    start: np.ndarray
    end: np.ndarray
    probs: np.ndarray
    labels: LabelSet
    metadata: dict

    def __len__(self) -> int:
        return len(self.files)


def state_dir(out: Pathlike) -> Path:
    """The state folder of a pseudo-label run writing ``out``: ``.<name>.parts`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.parts"


# ------------------------------------------------------------------------------------------------ teachers


@dataclass(frozen=True)
class _Teacher:
    """What a teacher's model header says (before anything is scored)."""

    path: str
    model: str | None
    sample_rate: int
    clip_duration: float
    license: str | None


def _read_teacher(teacher: Pathlike) -> _Teacher:
    """A teacher's header: a model file, or a run folder (its first fold's; licences of every fold)."""
    path = Path(teacher)
    if not path.exists():
        raise ParameterError(f"{path}: teacher model not found")
    if path.is_dir():
        from .ensemble import run_models

        files = run_models(path)
    else:
        files = [path]
    headers = [model_header(f) for f in files]
    model, features, _ = headers[0]
    licences = [lic for m, _, extra in headers for lic in model_licences(m, extra)]
    licence = BIRDNET_LICENSE if BIRDNET_LICENSE in licences else (licences[0] if licences else None)
    arch, backbone = model.get("arch"), model.get("backbone")
    name = "/".join(str(v) for v in (arch, backbone) if v) or None
    return _Teacher(str(teacher), name, int(features.sample_rate), float(features.clip_duration), licence)


def _check_windows(teachers: Sequence[_Teacher], hop: float | None) -> None:
    """Refuse teachers whose windows differ (clip duration, or a grid that is not the same at their rates)."""
    first = teachers[0]
    for other in teachers[1:]:
        if other.clip_duration != first.clip_duration:
            raise ParameterError(
                f"teachers {first.path} and {other.path} have different clip durations ({first.clip_duration:g} s and "
                f"{other.clip_duration:g} s): pseudo-label with teachers that score windows of the same length"
            )
    specs = [WindowSpec(t.sample_rate, t.clip_duration, hop) for t in teachers]  # validates hop
    grids = [(Fraction(s.clip_samples, s.sample_rate), Fraction(s.hop_samples, s.sample_rate)) for s in specs]
    for other, spec, grid in zip(teachers[1:], specs[1:], grids[1:]):
        if grid != grids[0]:
            what = f"the clip duration {first.clip_duration:g} s" if grid[0] != grids[0][0] else f"hop {hop:g} s"
            raise ParameterError(
                f"{what} is not a whole number of samples at both {specs[0].sample_rate} Hz ({first.path}) and "
                f"{spec.sample_rate} Hz ({other.path}): their windows would not line up; choose another --hop"
            )


def _check_combination(method: str, power: float) -> float | None:
    """The ensemble's own checks (:mod:`birdcall.infer.ensemble`); the power used, None unless ``method="power"``."""
    check_method(method)
    return check_power(power) if method == "power" else None


def _input_root(inputs: Sequence[Pathlike]) -> Path:
    """The folder the file names are relative to: the input folder when one is given, else the common parent
    folder of the inputs (a file counts as its folder)."""
    given = [Path(os.path.normpath(os.path.abspath(p))) for p in inputs]
    folders = [str(p if p.is_dir() else p.parent) for p in given]
    try:
        return Path(os.path.commonpath(folders))
    except ValueError:  # different drives (Windows)
        raise ParameterError(f"the inputs have no common folder ({', '.join(folders)}); pseudo-label each place into its own file") from None


@contextlib.contextmanager
def _exclusive(state: Path) -> Iterator[None]:
    """Hold ``state/.lock`` (one pseudo-label run at a time per output; a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        state.mkdir(parents=True, exist_ok=True)
        handle = open(state / ".lock", "a+")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        raise OutputWriteError(state, err) from err
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParameterError(f"{state}: another pseudo-label run is writing this output") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------------ writing


@keeps_torch_threads
def pseudo_label(
    teachers: Sequence[Pathlike],
    inputs: Sequence[Pathlike],
    out: Pathlike,
    *,
    method: str = "mean",
    power: float = 2.0,
    hop: float | None = None,
    batch_size: int = 32,
    workers: int = 0,
    threads: int | None = None,
    retry_failed: bool = False,
    show_progress: bool = False,
) -> PseudoLabelSummary:
    """Label every window of ``inputs`` with the combined probabilities of ``teachers`` into ``out`` (LABELS.parquet;
    see the module docstring for its layout and the state folder).

    Each teacher scores every file in a resumable ``scores`` run of its own
    (:func:`~birdcall.infer.run.run_inference`), at its own sample rate; then the rows every teacher has are combined per window and species
    with :func:`~birdcall.infer.ensemble.combine` (species aligned by code: the union, each combined over the
    teachers that score it). A file that failed in any teacher (or got non-finite scores) is left out and listed in
    the state folder's errors.csv; the others are labelled.

    Args:
        teachers: model files (``.safetensors``, ``.onnx``, ``.xml``) or training run folders; a run folder is one
            teacher, the mean of its folds.
        inputs: audio files and folders (searched recursively).
        out: the Parquet file to write.
        method: ``"mean"``, ``"power"`` or ``"rank"`` (:func:`~birdcall.infer.ensemble.combine`).
        power: exponent of ``"power"``.
        hop: seconds between window starts (None: the clip duration).
        batch_size: windows per model call.
        workers: decoding processes (0: a decoding thread).
        threads: intra-op threads of the backends.
        retry_failed: redo files an earlier run recorded as failed.
        show_progress: a progress bar per teacher.

    Returns:
        A :class:`PseudoLabelSummary`.

    Raises:
        ParameterError: no teacher or input, a missing path, teachers with different clip durations or window
            grids, an invalid method, power or hop, ``out`` a folder, another run writing ``out``, or a teacher's
            state folder holding a run with other settings (another teacher at that position, another hop).
        CheckpointError: a teacher model that cannot be read.
        OutputWriteError: writing failed (disk full, say); what was scored is kept for the rerun.
    """
    teachers = list(teachers)
    if not teachers:
        raise ParameterError("give at least one teacher model")
    used_power = _check_combination(method, power)
    out = Path(out)
    if out.is_dir():
        raise ParameterError(f"{out}: is a folder; the pseudo-labels are a Parquet file (give its file name)")
    files = discover_inputs(inputs)
    root = _input_root(inputs)
    infos = [_read_teacher(t) for t in teachers]
    _check_windows(infos, hop)
    state = state_dir(out)
    with _exclusive(state):
        remove_stale_temporaries(out.parent, name=out.name)
        remove_stale_temporaries(state, name="errors.csv")
        summaries = tuple(
            run_inference(teacher, files, state / f"teacher{i}.parquet", kind="scores", window=WindowOptions(hop=hop),
                          engine=EngineOptions(batch_size=batch_size, workers=workers, threads=threads), retry_failed=retry_failed,
                          show_progress=show_progress)
            for i, teacher in enumerate(teachers)
        )  # fmt: skip
        tables, failed = _teacher_tables(state, len(teachers), summaries)
        labels = align_labels([LabelSet.from_dict(settings["labels"]) for _, settings in tables])
        combined = _combined([frame for frame, _ in tables], failed, method=method, power=power)
        if list(combined.columns) != list(labels.codes):  # combine and align_labels both take codes in first-seen order
            raise BirdcallError(f"internal error: combined species {list(combined.columns)[:5]}... differ from {list(labels.codes)[:5]}...")
        entries = [_entry(info, settings) for info, (_, settings) in zip(infos, tables)]
        note = NON_COMMERCIAL_NOTE if any(e["license"] == BIRDNET_LICENSE for e in entries) else None
        planned = [str(f) for f in files]
        errors = tuple((f, _reason(failed[f])) for f in planned if f in failed)
        names = combined.index.get_level_values("file")
        metadata = {
            "format": FORMAT,
            "labels": labels.to_dict(),
            "teachers": entries,
            "method": method,
            "power": used_power,
            "clip_duration": infos[0].clip_duration,
            "hop": float(hop) if hop is not None else infos[0].clip_duration,
            "root": str(root),
            "windows": len(combined),
            "files": int(names.nunique()),
            "skipped": len(errors),
            "note": note,
        }
        error_table = pd.DataFrame({"file": [f for f, _ in errors], "reason": [r for _, r in errors]}, dtype="str")
        try:
            atomic_to_csv(error_table, state / "errors.csv")
            _write_labels(out, combined, labels, root, metadata)
        except OSError as err:
            raise OutputWriteError(getattr(err, "filename", None) or out, err, _RESUME_HINT) from err
    return PseudoLabelSummary(
        files=len(planned),
        windows=len(combined),
        skipped=len(errors),
        resumed=min(s.resumed for s in summaries),
        errors=errors,
        out=out,
        state_dir=state,
        teachers=summaries,
        note=note,
        complete=all(s.complete for s in summaries),
        missing=tuple(f"teacher {i}: {m}" for i, s in enumerate(summaries) for m in s.missing),
    )


def _teacher_tables(state: Path, count: int, summaries: Sequence[RunSummary]) -> tuple[list[tuple[pd.DataFrame, dict]], dict[str, dict[str, list[int]]]]:
    """Each teacher's score table and run settings, and ``file -> {reason: teachers}`` of the files to leave out:
    failed in a teacher, or scored with values that are not probabilities (NaN, say)."""
    from .writers import read_scores_parquet

    failed: dict[str, dict[str, list[int]]] = {}
    tables = []
    for i, summary in zip(range(count), summaries):
        for file, reason in summary.errors:
            failed.setdefault(file, {}).setdefault(reason, []).append(i)
        frame, settings = read_scores_parquet(state / f"teacher{i}.parquet")
        values = frame.to_numpy()  # float32, as written
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1)).all(axis=1)
        for file in pd.unique(frame.index.get_level_values("file")[bad]):
            failed.setdefault(str(file), {}).setdefault("scores that are not probabilities in [0, 1] (NaN, say)", []).append(i)
        tables.append((frame, settings))
    return tables, failed


def _reason(reasons: dict[str, list[int]]) -> str:
    """``"teacher 0: <reason>"``, ``"teachers 0, 1: <reason>"``; several reasons joined by ``"; "``."""
    return "; ".join(f"teacher{'s' if len(who) > 1 else ''} {', '.join(map(str, who))}: {reason}" for reason, who in reasons.items())


def _combined(frames: list[pd.DataFrame], failed: dict[str, Any], *, method: str, power: float) -> pd.DataFrame:
    """The windows every teacher scored (files in ``failed`` left out), combined; rows in the first teacher's order."""
    common = frames[0].index
    common = common[~common.get_level_values("file").isin(list(failed))]
    for frame in frames[1:]:
        common = common[common.isin(frame.index)]
    aligned = [frame.reindex(common) for frame in frames]
    combined = combine(aligned, method=method, power=power)
    return combined.clip(0.0, 1.0).astype(np.float32)


def _entry(teacher: _Teacher, settings: dict) -> dict:
    return {
        "path": teacher.path,
        "digest": settings.get("model"),
        "model": teacher.model,
        "sample_rate": int(settings.get("sample_rate", teacher.sample_rate)),
        "license": teacher.license,
        "note": NON_COMMERCIAL_NOTE if teacher.license == BIRDNET_LICENSE else None,
    }


def teacher_entry(teacher: Any) -> dict:
    """The entry naming ``teacher`` (a model file or run folder) in what it taught, as in a pseudo-label file's
    metadata: path, digest, model, sample rate, licence and note. A Scorer object has no file: its type name."""
    if not isinstance(teacher, (str, Path)):
        return {"path": type(teacher).__name__, "digest": None, "model": None, "sample_rate": None, "license": None, "note": None}
    info = _read_teacher(teacher)
    return _entry(info, {"model": model_digest(teacher, None), "sample_rate": info.sample_rate})


def _relative_name(file: str, root: Path) -> str:
    try:
        return Path(file).relative_to(root).as_posix()
    except ValueError:  # discover_inputs keeps every file under an input, hence under the root
        raise BirdcallError(f"internal error: {file} is not under the input root {root}") from None


def _write_labels(out: Path, combined: pd.DataFrame, labels: LabelSet, root: Path, metadata: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = combined.index.get_level_values("file")
    names = {f: _relative_name(str(f), root) for f in pd.unique(files)}
    arrays = [
        pa.array([names[f] for f in files], type=pa.string()),
        pa.array(combined.index.get_level_values("start_time").to_numpy(np.float64)),
        pa.array(combined.index.get_level_values("end_time").to_numpy(np.float64)),
    ] + [pa.array(combined[code].to_numpy(np.float32)) for code in labels.codes]
    fields = [pa.field("file", pa.string()), pa.field("start", pa.float64()), pa.field("end", pa.float64())]
    fields += [pa.field(code, pa.float32()) for code in labels.codes]
    schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, ensure_ascii=False)})
    with atomic_path(out) as tmp:
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), str(tmp))


# ------------------------------------------------------------------------------------------------ reading


def read_pseudo_labels(path: Pathlike, *, audio_root: Pathlike) -> PseudoLabels:
    """Read and validate a LABELS.parquet written by :func:`pseudo_label`.

    Its file names are data, maybe crafted: each is resolved under ``audio_root`` (the caller's, trusted; the
    ``root`` in the metadata is not used), and refused when absolute, when it has a ``..`` part, or when its
    resolved path (symlinks followed) leaves ``audio_root``. Files that do not exist are refused too.

    Args:
        path: the Parquet file.
        audio_root: the folder the file names are relative to.

    Returns:
        A :class:`PseudoLabels`, rows in the file's order.

    Raises:
        ParameterError: ``audio_root`` is not a folder.
        DataError: one line naming ``path``: not a readable Parquet file, no or malformed ``birdcall.pseudo_labels``
            metadata, another format version, missing columns, species columns that are not the metadata's labels,
            missing values, probabilities that are not finite or not in [0, 1], a window with ``start >= end`` or a
            negative start, a repeated window, a refused file name (naming the row and the name), missing files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    root = Path(os.path.abspath(audio_root))
    if not root.is_dir():
        raise ParameterError(f"{audio_root}: the audio root is not a folder")
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        table = pq.read_table(str(path))
    except (OSError, ValueError, pa.ArrowException) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(path, f"not a readable Parquet file ({' '.join(str(err).split())[:200]})") from None
    metadata = _read_metadata(path, table.schema.metadata or {})
    try:
        labels = LabelSet.from_dict(metadata.get("labels"))
    except (ValueError, TypeError, KeyError) as err:  # ValueError covers ParameterError
        raise DataError(path, f"malformed labels in the {METADATA_KEY} metadata ({' '.join(str(err).split())[:200]})") from None
    _check_columns(path, table, labels)
    n = table.num_rows
    start = _numbers(path, table, "start", np.float64)
    end = _numbers(path, table, "end", np.float64)
    bad = np.flatnonzero(~(np.isfinite(start) & np.isfinite(end) & (start >= 0) & (start < end)))
    if len(bad):
        r = int(bad[0])
        raise DataError(path, f"row {r}: window start {float(start[r])} s, end {float(end[r])} s (needs 0 <= start < end, finite)")
    probs = np.empty((n, len(labels)), dtype=np.float32)
    for j, code in enumerate(labels.codes):
        column = _numbers(path, table, code, np.float64)
        bad = np.flatnonzero(~(np.isfinite(column) & (column >= 0) & (column <= 1)))
        if len(bad):
            r = int(bad[0])
            raise DataError(path, f"row {r}, species {code!r}: probability {float(column[r])} is not in [0, 1]")
        probs[:, j] = column
    names = table.column("file").to_pylist()
    resolved = _resolve_names(path, names, root)
    keys = pd.DataFrame({"file": names, "start": start})
    repeated = np.flatnonzero(keys.duplicated().to_numpy())
    if len(repeated):
        r = int(repeated[0])
        raise DataError(path, f"row {r}: window ({names[r]!r}, start {float(start[r])} s) repeats an earlier row")
    missing = sorted({name for name, file in resolved.items() if not file.is_file()})
    if missing:
        shown = ", ".join(repr(m) for m in missing[:_SHOWN]) + (f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else "")
        raise DataError(path, f"{len(missing)} audio file(s) not found under the audio root {root}: {shown}")
    return PseudoLabels(tuple(resolved[name] for name in names), start, end, probs, labels, metadata)


def _read_metadata(path: Path, raw: dict) -> dict:
    value = raw.get(METADATA_KEY.encode())
    if value is None:
        raise DataError(path, f"no {METADATA_KEY} metadata: not a file of `birdcall pseudo-label`")
    try:
        metadata = json.loads(value.decode("utf-8"))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        metadata = None
    if not isinstance(metadata, dict):
        raise DataError(path, f"the {METADATA_KEY} metadata is not a JSON object")
    if metadata.get("format") != FORMAT:
        raise DataError(path, f"unsupported pseudo-label format {metadata.get('format')!r} (expected {FORMAT})")
    return metadata


def _check_columns(path: Path, table, labels: LabelSet) -> None:
    import pyarrow as pa

    names = table.column_names
    repeated = sorted(c for c, count in Counter(names).items() if count > 1)
    if repeated:
        raise DataError(path, f"repeated column(s) {repeated}")
    missing = [c for c in KEY_COLUMNS if c not in names]
    if missing:
        raise DataError(path, f"missing column(s) {missing} (expected {list(KEY_COLUMNS)} then one column per species)")
    species = [c for c in names if c not in KEY_COLUMNS]
    absent = [c for c in labels.codes if c not in species]
    unknown = [c for c in species if c not in labels]
    if absent or unknown:
        parts = ([f"no column for label(s) {absent[:5]}"] if absent else []) + ([f"column(s) {unknown[:5]} not in the labels"] if unknown else [])
        raise DataError(path, f"species columns do not match the metadata labels: {'; '.join(parts)}")
    kind = table.schema.field("file").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataError(path, f"column 'file' has type {kind}, expected string")
    for name in names:
        column = table.column(name)
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(path, f"row {row}: column {name!r} is empty (null)")


def _numbers(path: Path, table, name: str, dtype) -> np.ndarray:
    import pyarrow as pa

    kind = table.schema.field(name).type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        raise DataError(path, f"column {name!r} has type {kind}, expected numbers")
    return table.column(name).to_numpy().astype(dtype, copy=False)


def _resolve_names(path: Path, names: Sequence[str], root: Path) -> dict[str, Path]:
    """``name -> root / name`` for each distinct file name, refusing names that are absolute, have ``..`` or lead
    out of ``root`` once resolved (symlinks followed)."""
    real_root = root.resolve()
    out: dict[str, Path] = {}
    for row, name in enumerate(names):
        if name in out:
            continue
        shown = f"row {row}: file name {name!r}"
        if not name or "\x00" in name:
            raise DataError(path, f"{shown} is empty or holds a NUL character")
        posix, windows = PurePosixPath(name), PureWindowsPath(name)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
            raise DataError(path, f"{shown} is absolute; names must be relative to the audio root")
        if ".." in posix.parts or ".." in windows.parts:
            raise DataError(path, f"{shown} has a '..' part; names must stay inside the audio root")
        file = root.joinpath(*posix.parts)
        try:
            inside = file.resolve().is_relative_to(real_root)
        except (OSError, RuntimeError) as err:  # a symlink loop
            raise DataError(path, f"{shown} cannot be resolved ({' '.join(str(err).split())[:200]})") from None
        if not inside:
            raise DataError(path, f"{shown} leads out of the audio root {root} (to {file.resolve()})")
        out[name] = file
    return out
