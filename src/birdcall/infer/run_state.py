"""The on-disk state of an inference run: the one module that writes and reads a state folder.

Where the state lives (:func:`state_dir`), its names (plans, manifests, parts), its locks, its manifest records
and settings (``run.json``), and the temporaries of its atomic writes; :mod:`birdcall.infer.run` and
:mod:`birdcall.infer.outputs` ask it for all of them. (It runs past 500 lines on purpose: splitting the manifest
from the rest of the folder would give the layout two owners.)

Never losing work (:func:`~birdcall.infer.run.run_inference`)
    Each finished file's table is written atomically to ``parts/`` and only then recorded in a manifest
    (one JSON line, appended and fsynced); a failed file is recorded with its reason. A rerun of the same
    command skips every recorded file (failed ones too, unless ``retry_failed``), so a killed run resumes
    where it stopped. The combined outputs are rebuilt from the parts of the recorded files at the end of
    every run: one record, hence one part, per file, so a resumed run has no duplicate and no missing rows.
    The settings that change the results are kept in ``run.json``; a rerun with other settings into the same
    folder is refused. A write that fails (disk full, permissions) stops the run with one
    :class:`OutputWriteError` line; what was finished is kept. Temporaries of atomic writes that a killed run
    left behind (``.*.birdcall.tmp``) are removed when the next run starts and no other run uses the folder.

Manifest records (one JSON object a line; unknown statuses are ignored, so old manifests read as before)
    ``{"file", "status": "done", "part", "windows", "duration", "rows"}``: finished; its table is ``part``,
    which must be ``parts/<name>.parquet`` (a plain name) inside the state folder. Any other ``part`` (``..``,
    an absolute path, a symlink leading out of ``parts/``) is a corrupt record: skipped with a
    :class:`RunStateWarning` naming the manifest and line, so its file counts as not processed and is scored
    again (:func:`~birdcall.infer.outputs.merge_outputs` does not copy such a record, nor anything it names).
    ``{"file", "status": "failed", "reason"}``: failed, with its one-line reason (``errors.csv``).
    ``{"file", "status": "started", "run"}``: written (by the process that records results) before the
    file's first block is decoded. ``{"status": "stopped", "run"}``: that run ended on a Python exception
    (Ctrl-C, an error it reported), so its unfinished files were not what stopped it.
    A run that dies without a trace (killed, out of memory, a crash in native code) leaves ``started`` records
    with no ``done``/``failed`` after them; the last file it started is taken as the one that killed it. The
    next run of the shard retries that file once (with a warning); a file that killed two runs is recorded as
    failed ("the run died twice while processing this file") instead of killing every rerun. A normal run
    adds two lines per file it processes and a rerun with nothing to do adds none.

Layout of a state folder: ``OUT_DIR`` itself for ``analyze``; ``.<name>.parts/`` next to the CSV or Parquet file
for ``predict``, ``embed`` and ``scores`` runs (:func:`state_dir`)::

    run.json                        settings, model digest, labels (written by the first run)
    plans/shard-I-of-N.json         the files of every shard that ran here (I-of-N = 0-of-1 without --shard)
    manifest.jsonl                  one record per finished or failed file (manifest.shard-I-of-N.jsonl per shard)
    parts/<stem>-<hash>.parquet     one file's detections (analyze), window scores (predict, scores) or
                                    embeddings (embed)
    errors.csv                      file, reason of every failed file (in OUT_DIR itself for analyze)

    The combined outputs beside them are :mod:`birdcall.infer.outputs`'s. ``predict`` refuses inputs that share
    a stem (their BirdCLEF row ids ``<stem>_<end second>`` would repeat); a ``scores`` run keys rows by the
    whole path, so inputs that share a stem are fine there.

Sharding
    Shards may run one after another or at once into the same folder (each writes its own plan and manifest
    and shares ``parts/``); every run ends by rebuilding the combined outputs from all records in the folder
    (under a lock), so once the last shard ends they equal those of a single run. Shards that ran into
    separate folders are merged with :func:`~birdcall.infer.outputs.merge_outputs`
    (``birdcall analyze --merge --out OUT_DIR SHARD_DIRS...``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BirdcallError, ParameterError
from ..fileio import atomic_path, atomic_write_text, fsync_dir, remove_stale_temporaries
from ..types import Pathlike
from . import embeddings, writers
from .batching import FileResult
from .long_recording import WindowSpec

__all__ = [
    "KINDS",
    "EmbeddingPart",
    "Manifest",
    "OutputWriteError",
    "RunStateWarning",
    "check_or_write_settings",
    "check_out",
    "deaths",
    "drop_killers",
    "in_use",
    "locked",
    "part_path",
    "read_plans",
    "read_records",
    "read_settings",
    "recording_run",
    "copy_plans",
    "has_run",
    "state_dir",
    "write_part",
    "write_plan",
    "writing",
]

KINDS = ("detections", "submission", "embeddings", "scores")
FORMAT = "birdcall.run/1"
DEATHS = 2  # runs a file may kill (die while processing it) before it is recorded as failed and skipped
DIED_TWICE = "the run died twice while processing this file; skipped (delete its manifest lines, or retry failed files, to try again)"
RESUME_HINT = "the files finished so far are kept: rerun the same command to resume"


class RunStateWarning(UserWarning):
    """Something in a run's state folder needs the user's attention: a corrupt manifest record (skipped), or a
    file being retried because the previous run died while processing it. One line, naming the file."""


class OutputWriteError(BirdcallError, OSError):
    """An output or run-state file could not be written (disk full, permissions, read-only file system).

    ``str(err)`` is one line, ``"<path>: cannot write (<cause>); <hint>"``; ``errno`` is the OS error's.
    Being an ``OSError`` too, it is caught where an OSError was before.
    """

    def __init__(self, path: Pathlike, err: OSError, hint: str = ""):
        super().__init__(err.errno, err.strerror or str(err))
        self.path = os.fspath(path)
        self.filename = self.path
        self.cause = " ".join(str(err.strerror or err).split())
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.path}: cannot write ({self.cause})" + (f"; {self.hint}" if self.hint else "")


@contextlib.contextmanager
def writing(path: Pathlike, hint: str = RESUME_HINT) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into one :class:`OutputWriteError` line naming it."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as err:
        raise OutputWriteError(path, err, hint) from err


def state_dir(out: Pathlike, kind: str) -> Path:
    """Where a run keeps run.json, plans, manifests and parts: ``out`` itself for ``detections``; for
    ``submission``, ``embeddings`` and ``scores`` (``out`` is the CSV or the Parquet file) the hidden folder
    ``.<name>.parts`` next to it."""
    check_kind(kind)
    out = Path(out)
    return out if kind == "detections" else out.parent / f".{out.name}.parts"


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {KINDS}, got {kind!r}")


def shard_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def manifest_name(index: int, count: int) -> str:
    return "manifest.jsonl" if count == 1 else f"manifest.{shard_name(index, count)}.jsonl"


def _safe_stem(file: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(file).stem)[:60] or "file"


def _key_hash(file: str, n: int) -> str:
    return hashlib.sha1(file.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def part_name(file: str) -> str:
    return f"parts/{_safe_stem(file)}-{_key_hash(file, 16)}.parquet"


def output_stems(files: Sequence[str]) -> dict[str, str]:
    """Per-file output names: the stem, plus ``-<hash>`` for stems shared by several inputs."""
    counts = Counter(Path(f).stem for f in files)
    return {f: Path(f).stem if counts[Path(f).stem] == 1 else f"{Path(f).stem}-{_key_hash(f, 8)}" for f in files}


def check_out(out: Path, kind: str) -> None:
    """Refuse an ``out`` that cannot be written, before any work: the submission CSV naming a folder, the
    output folder naming a file, or a place under a file or a folder without write permission."""
    out = Path(os.path.abspath(out))
    if kind != "detections":
        if out.is_dir():
            what = {"submission": "the submission is a CSV file", "embeddings": "the embeddings are a Parquet file",
                    "scores": "the scores are a Parquet file"}[kind]  # fmt: skip
            raise ParameterError(f"{out}: is a folder; {what} (give its file name)")
        folder = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise ParameterError(f"{out}: exists and is not a folder (the output of a detections run is a folder)")
        folder = out
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(f"{out}: cannot be created, {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(f"{out}: cannot write into {existing} (permission denied)")


def check_parts_folder(state: Path) -> None:
    parts = state / "parts"
    if parts.is_symlink() or (parts.exists() and not parts.is_dir()):
        raise ParameterError(f"{parts}: must be a real folder (not a symlink or a file); birdcall reads and writes parts only there")


@contextlib.contextmanager
def in_use(state: Path, temporaries: Sequence[tuple[Path, str | None]] = ()) -> Iterator[None]:
    """Mark ``state`` as in use (a shared lock on ``state/.running``) while a run, merge or combine writes into
    it. With ``temporaries`` (``(folder, name)`` pairs, :func:`~birdcall.fileio.remove_stale_temporaries`),
    the first user, the one that finds nobody else inside, first removes the temporaries a killed run left
    there: with nobody else inside, no atomic write is in progress, so every such file is stale."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cleaning (nothing tells a live temporary from a stale one)
        yield
        return
    with writing(state):
        state.mkdir(parents=True, exist_ok=True)
        handle = open(state / ".running", "a+")  # noqa: SIM115 - closed by the with below
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)  # others are at work: their temporaries may be live
        else:
            for folder, name in temporaries:
                remove_stale_temporaries(folder, name=name)
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def temporary_folders(out: Path, kind: str) -> list[tuple[Path, str | None]]:
    """Where the atomic writes of a run into ``out`` put their temporaries (``name``: only that file's)."""
    state = state_dir(out, kind)
    folders: list[tuple[Path, str | None]] = [(state, None), (state / "parts", None), (state / "plans", None)]
    if kind == "detections":
        folders += [(out / "raven", None), (out / "audacity", None)]
    else:
        folders.append((out.parent, out.name))  # the CSV's folder is the user's: only the CSV's temporaries
    return folders


@contextlib.contextmanager
def locked(path: Path, *, wait: bool = True, busy: str = "") -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (fcntl; a no-op where it does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with writing(path, hint=""):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with below
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ParameterError(busy or f"{path}: locked by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Manifest:
    """Append-only JSON-lines record of the files of a run; every line is flushed and fsynced. Thread-safe
    (``started`` records come from the decoding thread)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self.handle = open(path, "ab")
        self.lock = threading.Lock()
        if new:
            fsync_dir(path.parent)
        elif path.stat().st_size:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":  # a line torn by a kill: start ours on a fresh line
                    self.handle.write(b"\n")

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            self.handle.write(data)
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


@contextlib.contextmanager
def recording_run(record: Manifest, run: str) -> Iterator[None]:
    """The body of one run over its files (the local and the Ray engine): an exception it sees (Ctrl-C, an error
    it reports) appends a ``stopped`` record for ``run`` and goes on, so the files in flight are not taken for
    files that killed it (:func:`deaths`); the manifest is closed either way."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            record.append({"status": "stopped", "run": run})
        raise
    finally:
        record.close()


_PART = re.compile(r"parts/([^/\\\x00]+\.parquet)")


def part_path(state: Path, part: object) -> Path | None:
    """The file a ``done`` record's ``part`` names, or None when it is not ``parts/<name>.parquet`` inside ``state``.

    The one check of every reader and writer of parts (:func:`read_records`, :func:`~birdcall.infer.outputs.combine_outputs`, the
    resume of :func:`~birdcall.infer.run.run_inference`, :func:`~birdcall.infer.outputs.merge_outputs` for its source and its target): a manifest line
    is data, maybe crafted, and ``part`` must never lead outside ``<state>/parts/``. The name must be plain
    (no separator, no NUL, hence neither absolute nor ``..``), and the path with every symlink resolved must
    still lie directly in ``<state>/parts`` (so a symlinked ``parts`` folder or part file is refused as well).
    """
    if not isinstance(part, str):
        return None
    match = _PART.fullmatch(part)
    if match is None:
        return None
    path = state / "parts" / match.group(1)
    try:
        inside = path.resolve().parent == state.resolve() / "parts"
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
        return None
    return path if inside else None


def parse_record(line: str) -> dict | None:
    """A manifest line as a dict with a string ``status`` (and, when present, a string ``file`` without NUL); else None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return None
    file = record.get("file")
    if file is not None and (not isinstance(file, str) or "\x00" in file):
        return None
    return record


def manifest_lines(manifest: Path) -> list[str]:
    """The lines of a manifest: split on newlines only (``str.splitlines`` would also split a file name at the
    U+0085, U+2028 or U+2029 that ``json.dumps(..., ensure_ascii=False)`` leaves unescaped)."""
    return manifest.read_text(encoding="utf-8", errors="replace").split("\n")


def printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


def warn_corrupt(manifest: Path, number: int, record: dict, what: str) -> None:
    warnings.warn(
        f"{manifest}, line {number}: corrupt record skipped (part {record.get('part')!r} is not "
        f"parts/<name>.parquet inside this folder); {printable(str(record.get('file')))} {what}",
        RunStateWarning,
        stacklevel=3,
    )


def read_records(state: Path) -> dict[str, dict]:
    """The record of every file in every manifest of ``state``: a ``done`` record beats a ``failed`` one,
    a later line beats an earlier one; torn or foreign lines are ignored; a ``done`` record whose part is
    gone does not count.

    A ``done`` record whose ``part`` is not a part of this folder (:func:`part_path`) is corrupt: it is skipped
    and, unless a later valid record of its file supersedes it, reported with a :class:`RunStateWarning`
    naming the manifest and line. Its file then counts as not processed, so a run scores it again.
    """
    records: dict[str, dict] = {}
    for manifest in sorted(state.glob("manifest*.jsonl")):
        corrupt: dict[str, tuple[int, dict]] = {}  # file -> its last corrupt record not superseded since
        for number, line in enumerate(manifest_lines(manifest), 1):
            record = parse_record(line)
            if record is None or record.get("file") is None or record["status"] not in ("done", "failed"):
                continue
            if record["status"] == "done":
                part = part_path(state, record.get("part"))
                if part is None:
                    corrupt[record["file"]] = (number, record)
                    continue
                corrupt.pop(record["file"], None)
                if not part.is_file():
                    continue
            corrupt.pop(record["file"], None)
            old = records.get(record["file"])
            if old is None or record["status"] == "done" or old["status"] == "failed":
                records[record["file"]] = record
        for number, record in corrupt.values():
            warn_corrupt(manifest, number, record, "counts as not processed (a run scores it again)")
    return records


def deaths(manifest: Path) -> Counter:
    """How many runs recorded in ``manifest`` died while processing each file.

    A run died if it left ``started`` records with no ``done``/``failed`` record of their file after them and
    no ``stopped`` record of its own; the last of them is the file it was decoding when it died (the decoder
    runs ahead of the model), so that file, and only that one, is counted for the run.
    """
    if not manifest.is_file():
        return Counter()
    started: list[tuple[int, str, str]] = []  # (line, file, run) of the started records not finished since
    stopped: set[str] = set()
    for number, line in enumerate(manifest_lines(manifest)):
        record = parse_record(line)
        if record is None:
            continue
        status, file, run = record["status"], record.get("file"), str(record.get("run"))
        if status == "started" and file is not None:
            started.append((number, file, run))
        elif status in ("done", "failed") and file is not None:
            started = [entry for entry in started if entry[1] != file]
        elif status == "stopped":
            stopped.add(run)
    last: dict[str, tuple[int, str]] = {}
    for number, file, run in started:
        if run not in stopped and number > last.get(run, (-1, ""))[0]:
            last[run] = (number, file)
    return Counter(file for _, file in last.values())


def read_plans(state: Path) -> dict[tuple[int, int], list[str]]:
    plans = {}
    for path in sorted((state / "plans").glob("shard-*-of-*.json")):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            plan = json.loads(path.read_text(encoding="utf-8"))
            plans[(int(plan["shard"][0]), int(plan["shard"][1]))] = [str(f) for f in plan["files"] if "\x00" not in str(f)]
    return plans


def write_plan(state: Path, index: int, count: int, files: Sequence[str]) -> None:
    """Record the files of shard ``index/count`` (``plans/shard-I-of-N.json``), atomically."""
    plan = state / "plans" / f"{shard_name(index, count)}.json"
    atomic_write_text(plan, json.dumps({"shard": [index, count], "files": list(files)}, indent=1) + "\n")


def copy_plans(src: Path, target: Path) -> None:
    """Copy every plan of the state folder ``src`` into ``target`` (a merge of shards that ran elsewhere)."""
    for plan in sorted((src / "plans").glob("shard-*-of-*.json")):
        text = plan.read_text(encoding="utf-8")
        with writing(target / "plans" / plan.name, hint=""):
            atomic_write_text(target / "plans" / plan.name, text)


def has_run(folder: Path) -> bool:
    """Whether ``folder`` is a state folder a run has recorded its settings in."""
    return (folder / "run.json").is_file()


def read_settings(state: Path) -> dict:
    """The settings a run recorded in ``state`` (``run.json``)."""
    return json.loads((state / "run.json").read_text(encoding="utf-8"))


def _settings_diff(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if k != "created" and old.get(k) != new.get(k))


def check_or_write_settings(state: Path, settings: dict) -> None:
    path = state / "run.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        differ = _settings_diff(old, settings)
        if differ:
            raise ParameterError(
                f"{state}: holds the results of a run with other settings (different {', '.join(differ)}); "
                "use another output folder, or delete it to start over"
            )
        return
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def write_part(state: Path, file: str, frame: pd.DataFrame, kind: str) -> str:
    name = part_name(file)
    path = state / name
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "detections":
            writers.write_detections_parquet(frame, path)  # atomic: the folder is fsynced after the rename
        else:
            with atomic_path(path) as tmp:
                frame.reset_index().to_parquet(tmp, engine="pyarrow", index=False)
    return name


class _Discarded(Exception):
    """Thrown into a part's atomic write to drop its temporary (the file failed, or the run stopped)."""


class EmbeddingPart:
    """The sink (:func:`~birdcall.infer.batching.score_files`) of an ``embeddings`` run: streams a file's vectors into its part as they are
    computed (:class:`~birdcall.infer.embeddings.EmbeddingWriter`; memory: one row group, however long the file).

    The part is written under a temporary name and renamed when the file is finished (so a part is always
    complete, and recorded only after that); a failed file's temporary is deleted, and one that a killed run
    left is removed by the next run (``temporary_folders`` lists ``parts/``).
    """

    def __init__(self, state: Path, path: str, spec: WindowSpec, dim: int):
        self.path, self.spec, self.name = path, spec, part_name(path)
        self.dest = state / self.name
        with writing(self.dest):
            self._target = atomic_path(self.dest)  # entered here, left in finish() or discard()
            tmp = self._target.__enter__()
            try:
                self._writer = embeddings.EmbeddingWriter(tmp, dim)
            except BaseException as err:
                self._target.__exit__(type(err), err, None)
                raise

    def add(self, starts: np.ndarray, values: np.ndarray) -> None:
        start_times = np.asarray(starts, dtype=np.float64) / self.spec.sample_rate
        with writing(self.dest):
            self._writer.write(self.path, start_times, start_times + self.spec.clip_samples / self.spec.sample_rate, values)

    def finish(self, index: int, duration: float) -> FileResult:
        target, self._target = self._target, None
        with writing(self.dest):
            try:
                self._writer.close()
            except BaseException as err:
                target.__exit__(type(err), err, None)
                raise
            target.__exit__(None, None, None)  # fsync, rename onto the part, fsync the folder
        return FileResult(index, self.path, None, None, duration, part=self.name, rows=self._writer.rows)

    def discard(self) -> None:
        target, self._target = self._target, None
        if target is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            err = _Discarded()
            target.__exit__(type(err), err, None)  # deletes the temporary; returns without raising




def drop_killers(todo: list[str], manifest: Path) -> list[str]:
    """``todo`` without the files that killed :data:`DEATHS` runs (recorded as failed in ``manifest`` now);
    a file that killed one run stays, with a warning (see the module docstring)."""
    died = deaths(manifest)
    killers = [f for f in todo if died[f] >= DEATHS]
    for file in todo:
        if 0 < died[file] < DEATHS:
            warnings.warn(f"{printable(file)}: the previous run died while processing this file; trying it once more",
                          RunStateWarning, stacklevel=3)
    if killers:
        with writing(manifest):
            writer = Manifest(manifest)
            try:
                for file in killers:
                    writer.append({"file": file, "status": "failed", "reason": DIED_TWICE})
            finally:
                writer.close()
    return [f for f in todo if died[f] < DEATHS]
