"""The combined outputs of a run, rebuilt from its state folder (:func:`combine_outputs`), and the merge of shards
that ran into other folders (:func:`merge_outputs`).

Every run ends by rebuilding the combined outputs from the records and parts of every shard in the folder (under a
lock): one record, hence one part, per file, so a resumed run has no duplicate and no missing rows, and once the
last shard ends they equal those of a single run. What a kind of run writes:

* ``detections``: ``detections.csv``, ``detections.parquet``, :data:`COMBINED_RAVEN` (one Raven selection table
  for all files, outside ``raven/`` so that no input's name can take it), ``raven/<stem>.selections.txt`` and
  ``audacity/<stem>.txt`` per file, ``errors.csv``. Per-file names use the file stem, with ``-<hash>`` added when
  two inputs share a stem.
* ``submission``: the BirdCLEF CSV (:func:`~birdcall.infer.writers.write_submission`).
* ``scores``: one table of every window, in file order then time
  (:func:`~birdcall.infer.writers.write_scores_parquet`): ``file`` (the absolute path), ``start_time``, ``end_time``,
  one float32 column per species, the run settings (run.json) in the Parquet metadata.
* ``embeddings``: the embedding table (:mod:`birdcall.infer.embeddings`), rebuilt part after part, so combining
  never holds more than a row group.

The last three keep ``errors.csv`` in the state folder (:func:`~birdcall.infer.run_state.state_dir`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..fileio import atomic_path, atomic_to_csv
from ..types import Pathlike
from . import embeddings, writers
from .detections import empty_detections
from .run_state import (
    Manifest,
    check_kind,
    check_or_write_settings,
    check_out,
    check_parts_folder,
    copy_plans,
    has_run,
    in_use,
    locked,
    manifest_lines,
    output_stems,
    parse_record,
    part_path,
    read_plans,
    read_records,
    read_settings,
    state_dir,
    temporary_folders,
    warn_corrupt,
    writing,
)

__all__ = ["COMBINED_RAVEN", "INDEX", "combine_outputs", "empty_scores", "merge_outputs"]

COMBINED_RAVEN = "raven_combined.selections.txt"  # the Raven table of all files, in the output folder itself
INDEX = ["file", "start_time", "end_time"]


def empty_scores(codes: Sequence[str]) -> pd.DataFrame:
    """A prediction table without rows: index (file, start_time, end_time), one float32 column per code."""
    index = pd.MultiIndex.from_arrays([pd.array([], dtype="str"), np.zeros(0), np.zeros(0)], names=INDEX)
    return pd.DataFrame(np.zeros((0, len(codes)), dtype=np.float32), index=index, columns=list(codes))


def combine_outputs(out: Pathlike, *, kind: str = "detections") -> dict:
    """Rebuild the combined outputs from every record and part in the state folder of ``out``.

    Only files of the current plans count (a file dropped from the inputs of a rerun drops out); each file
    contributes its one part, files in sorted order.

    Returns:
        ``{"outputs": paths written, "complete": bool, "missing": what is incomplete, "files": planned files,
        "windows": windows of the finished ones, "skipped": failed files}``.

    Raises:
        ParameterError: no run has been recorded there.
        OutputWriteError: an output could not be written (disk full, say).
    """
    check_kind(kind)
    out = Path(out)
    state = state_dir(out, kind)
    if not has_run(state):
        raise ParameterError(f"{state}: no birdcall run here (run.json not found)")
    with in_use(state), locked(state / ".lock"):
        settings = read_settings(state)
        if settings.get("kind") != kind:
            raise ParameterError(f"{state}: holds a {settings.get('kind')!r} run, not {kind!r}")
        plans = read_plans(state)
        records = read_records(state)
        planned = sorted({f for files in plans.values() for f in files})
        done = [f for f in planned if f in records and records[f]["status"] == "done"]
        failed = [f for f in planned if f in records and records[f]["status"] == "failed"]
        missing = _missing(plans, planned, records)
        parts = [part_path(state, records[f]["part"]) for f in done]  # read_records checked the parts
        errors = pd.DataFrame({"file": pd.array(failed, dtype="str"), "reason": pd.array([records[f].get("reason", "") for f in failed], dtype="str")})
        if kind == "embeddings":  # part after part: memory holds one row group, not the table
            outputs = _write_embeddings(out, parts, settings)
            errors_csv = state / "errors.csv"
        elif kind in ("submission", "scores"):
            frames = [pd.read_parquet(part) for part in parts]
            outputs = (_write_submission if kind == "submission" else _write_scores)(out, frames, settings)
            errors_csv = state / "errors.csv"
        else:
            frames = [pd.read_parquet(part) for part in parts]
            outputs = _write_detections(out, frames, done, records, settings, stems=output_stems(planned))
            errors_csv = out / "errors.csv"
        with writing(errors_csv):
            outputs.append(atomic_to_csv(errors, errors_csv))
    return {
        "outputs": tuple(outputs),
        "complete": not missing,
        "missing": tuple(missing),
        "files": len(planned),
        "windows": sum(int(records[f].get("windows", 0)) for f in done),
        "skipped": len(failed),
    }


def _missing(plans: dict[tuple[int, int], list[str]], planned: list[str], records: dict[str, dict]) -> list[str]:
    if not plans:
        return ["no shard has run"]
    counts = sorted({n for _, n in plans})
    complete_counts = [n for n in counts if all((i, n) in plans for i in range(n))]
    missing = []
    if not complete_counts:
        n = counts[-1]
        missing += [f"shard {i}/{n}" for i in range(n) if (i, n) not in plans]
    unrecorded = sum(f not in records for f in planned)
    if unrecorded:
        missing.append(f"{unrecorded} file(s) not processed yet")
    return missing


def _write_submission(out: Path, frames: list[pd.DataFrame], settings: dict) -> list[Path]:
    codes = settings["labels"]["codes"]
    scores = pd.concat(frames, ignore_index=True).set_index(INDEX) if frames else empty_scores(codes)
    with writing(out):
        return [writers.write_submission(scores.loc[:, codes], out)]


def _write_scores(out: Path, frames: list[pd.DataFrame], settings: dict) -> list[Path]:
    """The scores table ``out``: every part's windows in file order, the run's settings in its metadata."""
    codes = settings["labels"]["codes"]
    scores = pd.concat(frames, ignore_index=True).set_index(INDEX) if frames else empty_scores(codes)
    with writing(out):
        return [writers.write_scores_parquet(scores.loc[:, codes], out, settings=settings)]


def _write_embeddings(out: Path, parts: list[Path], settings: dict) -> list[Path]:
    """The embedding table ``out``: every part's rows in file order, the run's settings in its metadata."""
    dim = int(settings["dim"])
    meta = {k: settings.get(k) for k in ("embedder", "sample_rate", "clip_duration", "hop", "final_clip", "pad", "model")}
    meta["hop"] = meta["hop"] if meta["hop"] is not None else meta["clip_duration"]  # seconds between window starts
    with writing(out), atomic_path(out) as tmp:
        writer = embeddings.EmbeddingWriter(tmp, dim, meta)
        try:
            for part in parts:
                for batch in embeddings.iter_batches(part, dim):
                    writer.write_batch(batch)
        finally:
            writer.close()
    return [out]


def _write_detections(out: Path, frames: list[pd.DataFrame], done: list[str], records: dict[str, dict], settings: dict, *,
                      stems: dict[str, str]) -> list[Path]:
    detections = pd.concat(frames, ignore_index=True) if frames else empty_detections()
    high_freq = settings.get("fmax")
    outputs = []
    for name, write in (("detections.csv", writers.write_detections_csv), ("detections.parquet", writers.write_detections_parquet)):
        with writing(out / name):
            outputs.append(write(detections, out / name))
    for file, frame in zip(done, frames):
        raven, audacity = out / "raven" / f"{stems[file]}.selections.txt", out / "audacity" / f"{stems[file]}.txt"
        with writing(raven):
            writers.write_raven(frame, raven, high_freq=high_freq, combined=False)
        with writing(audacity):
            writers.write_audacity(frame, audacity)
    durations = {f: float(records[f].get("duration", 0.0)) for f in done}
    combined = out / COMBINED_RAVEN  # not in raven/, where an input named combined.* has its own table
    with writing(combined):
        outputs.append(writers.write_raven(detections, combined, high_freq=high_freq, combined=True, durations=durations))
    return outputs


def merge_outputs(out: Pathlike, sources: Sequence[Pathlike] = (), *, kind: str = "detections") -> dict:
    """Bring the shards that ran into other folders (``sources``) into ``out``, then :func:`combine_outputs`.

    Each source is an output folder (``detections``), a submission CSV or a state folder; its settings must
    equal those of ``out`` (which takes them when it has none). Plans, manifest lines and parts are copied.

    A ``done`` record whose ``part`` is not ``parts/<name>.parquet`` inside the source (or would not land
    inside the target's ``parts/``; :func:`~birdcall.infer.run_state.part_path`) is reported with a
    :class:`~birdcall.infer.run_state.RunStateWarning` naming the
    source manifest and line, and neither it nor anything it names is copied: its file stays unprocessed in
    ``out`` (listed as missing), so a run into ``out`` scores it. Nothing is ever written outside ``out``.

    Returns:
        As :func:`combine_outputs`.

    Raises:
        ParameterError: a source without a run, or with other settings; ``out`` unusable (see :func:`~birdcall.infer.run.run_inference`).
        OutputWriteError: writing into ``out`` failed (disk full, say).
    """
    check_kind(kind)
    check_out(Path(out), kind)
    target = state_dir(out, kind)
    sources = list(sources)
    for source in sources:
        source = Path(source)
        src = source if has_run(source) else state_dir(source, kind)
        if not has_run(src):
            raise ParameterError(f"{source}: no birdcall run here (run.json not found)")
    with writing(target, hint=""):
        target.mkdir(parents=True, exist_ok=True)
    check_parts_folder(target)
    with in_use(target, temporary_folders(Path(out), kind)):
        for source in sources:
            source = Path(source)
            src = source if has_run(source) else state_dir(source, kind)
            if src.resolve() == target.resolve():
                continue
            settings = read_settings(src)
            with locked(target / ".lock"):
                with writing(target / "run.json", hint=""):
                    check_or_write_settings(target, settings)
                copy_plans(src, target)
                for manifest in sorted(src.glob("manifest*.jsonl")):
                    _merge_manifest(manifest, src, target)
        return combine_outputs(out, kind=kind)


def _merge_manifest(manifest: Path, src: Path, target: Path) -> None:
    """Copy the parts and the records of a source ``manifest`` into ``target`` (lines it has already are
    skipped), except ``started``/``stopped`` records: which runs died is a matter of the folder they ran in."""
    lines = manifest_lines(manifest)
    keep = []
    for number, line in enumerate(lines, 1):
        record = parse_record(line) if line else None
        if record is None or record["status"] in ("started", "stopped"):  # a run's own bookkeeping, about its folder
            continue
        if record["status"] == "done":
            part, dest = part_path(src, record.get("part")), part_path(target, record.get("part"))
            if part is None or dest is None:
                warn_corrupt(manifest, number, record, "is not merged")
                continue
            if part.is_file():
                with writing(dest, hint=""), atomic_path(dest) as tmp:
                    shutil.copyfile(part, tmp)
        keep.append(line)
    existing = set(manifest_lines(target / manifest.name)) if (target / manifest.name).is_file() else set()
    new = [line for line in keep if line not in existing]
    if new:
        with writing(target / manifest.name, hint=""):
            writer = Manifest(target / manifest.name)
            try:
                for line in new:
                    writer.append(json.loads(line))
            finally:
                writer.close()
