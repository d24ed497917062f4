"""Hardening of the on-disk runs (issue 15): untrusted manifest lines, row ids that would repeat, an input named
``combined.*``, runs killed by a file, unwritable outputs and disk full, stale temporaries of killed writes."""

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import BirdcallError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer import producers, run_state
from birdcall.infer.outputs import COMBINED_RAVEN, combine_outputs, merge_outputs
from birdcall.infer.run import DetectionOptions, EngineOptions, run_inference
from birdcall.infer.run_state import OutputWriteError, RunStateWarning

RATE = 8000
OPTIONS = {"detection": DetectionOptions(min_confidence=0.0), "engine": EngineOptions(batch_size=3)}


class Stats:
    """A scorer that records its calls: each window's mean and peak."""

    labels = LabelSet(("mean", "peak"), common_names=("Mean", "Peak"))
    features = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=16, fmin=0.0, fmax=4000.0, clip_duration=1.0)

    def __init__(self):
        self.calls: list[int] = []

    def __call__(self, windows):
        self.calls.append(len(windows))
        return np.stack([windows.mean(axis=1), np.abs(windows).max(axis=1)], axis=1).astype(np.float32)


def write(path, seconds, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, rng.random(int(seconds * RATE)).astype(np.float32) * 0.5, RATE, subtype="FLOAT")


@pytest.fixture
def files(tmp_path, rng):
    return [write(tmp_path / "audio" / f"rec{i}.wav", 1.5 + i, rng) for i in range(3)]


def lines(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def write_lines(manifest: Path, records: list[dict]) -> None:
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))


def derived(out: Path) -> dict[str, bytes]:
    names = ["detections.csv", "errors.csv", COMBINED_RAVEN] + [str(p.relative_to(out)) for p in sorted(out.glob("raven/*")) + sorted(out.glob("audacity/*"))]
    return {name: (out / name).read_bytes() for name in names}


# ------------------------------------------------------------------------------------------ 1: untrusted part


@pytest.mark.parametrize("part", ["parts/x.parquet", "parts/rec0-0123456789abcdef.parquet", "parts/a..b.parquet"])
def test_part_validator_accepts_plain_names_in_parts(tmp_path, part):
    assert run_state.part_path(tmp_path, part) == tmp_path / part


@pytest.mark.parametrize("part", [
    "../../payload.bin", "parts/../../payload.parquet", "parts/sub/x.parquet", "parts\\..\\x.parquet", "/etc/x.parquet",
    "parts/x.parquet\x00", "parts/.parquet/..", "x.parquet", "parts/x.csv", "", None, 7, ["parts/x.parquet"],
])
def test_part_validator_refuses_everything_else(tmp_path, part):
    assert run_state.part_path(tmp_path, part) is None


def test_part_validator_refuses_symlinks_out_of_parts(tmp_path):
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    (state / "parts").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "secret.parquet").write_bytes(b"x")
    (state / "parts" / "link.parquet").symlink_to(elsewhere / "secret.parquet")
    assert run_state.part_path(state, "parts/link.parquet") is None
    other = tmp_path / "other"
    other.mkdir()
    (other / "parts").symlink_to(elsewhere, target_is_directory=True)  # a symlinked parts folder
    assert run_state.part_path(other, "parts/secret.parquet") is None


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_ino, p.lstat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("crafted", ["../../payload.bin", "absolute", "symlink"])
def test_merge_never_writes_outside_the_target_and_reports_the_record(files, tmp_path, crafted):
    src = tmp_path / "a" / "b" / "src"
    run_inference(Stats(), files, src, **OPTIONS)
    outside = tmp_path / "a" / "payload.bin"  # src/../../payload.bin: a valid part, so only the path is wrong
    shutil.copyfile(next((src / "parts").glob("rec1-*.parquet")), outside)
    part = {"../../payload.bin": "../../payload.bin", "absolute": str(outside), "symlink": "parts/evil.parquet"}[crafted]
    if crafted == "symlink":
        (src / "parts" / "evil.parquet").symlink_to(outside)  # reading it would copy a file from outside the source
    manifest = src / "manifest.jsonl"
    records = lines(manifest)
    victim = next(r for r in records if r["status"] == "done" and r["file"] == str(files[1]))
    victim["part"] = part
    write_lines(manifest, records)
    number = records.index(victim) + 1
    target = tmp_path / "A" / "B" / "C"
    target.mkdir(parents=True)
    before = snapshot(tmp_path)

    with pytest.warns(RunStateWarning, match=rf"manifest.jsonl, line {number}: corrupt record skipped .*rec1.wav is not merged"):
        result = merge_outputs(target, [src])
    after = snapshot(tmp_path)
    def outside_target(tree):
        return {k: v for k, v in tree.items() if not (k == "A/B/C" or k.startswith("A/B/C/"))}

    assert outside_target(after) == outside_target(before)  # nothing outside the target written, not even the source
    assert not (target / "parts" / "evil.parquet").exists() and len(list((target / "parts").iterdir())) == 2
    assert str(files[1]) not in (target / "manifest.jsonl").read_text()  # the record is not copied ...
    assert not result["complete"] and result["missing"] == ("1 file(s) not processed yet",)  # ... so the file is missing,
    scorer = Stats()
    summary = run_inference(scorer, files, target, **OPTIONS)  # and a run into the target scores it
    assert summary.resumed == 2 and summary.complete and summary.skipped == 0 and sum(scorer.calls) > 0


def test_a_corrupt_part_record_is_reported_and_its_file_scored_again(files, tmp_path):
    reference = tmp_path / "reference"
    run_inference(Stats(), files, reference, **OPTIONS)
    out = tmp_path / "deep" / "out"
    run_inference(Stats(), files, out, **OPTIONS)
    decoy = tmp_path / "deep" / "decoy.parquet"  # what `out / "../decoy.parquet"` would read
    pd.read_parquet(next((out / "parts").glob("rec2-*.parquet"))).to_parquet(decoy)
    manifest = out / "manifest.jsonl"
    records = lines(manifest)
    victim = next(r for r in records if r["status"] == "done" and r["file"] == str(files[2]))
    victim["part"] = "../decoy.parquet"
    write_lines(manifest, records)
    number = records.index(victim) + 1

    with pytest.warns(RunStateWarning, match=rf"{manifest}, line {number}: corrupt record skipped .*rec2.wav counts as not processed"):
        combined = combine_outputs(out)
    assert combined["missing"] == ("1 file(s) not processed yet",)
    assert str(files[2]) not in set(pd.read_csv(out / "detections.csv")["file"])  # the decoy was not read

    scorer = Stats()
    with pytest.warns(RunStateWarning, match=f"line {number}: corrupt record skipped"):
        summary = run_inference(scorer, files, out, **OPTIONS)  # resume
    assert summary.resumed == 2 and summary.complete and 0 < sum(scorer.calls)
    assert derived(out) == derived(reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunStateWarning)  # superseded by the new record: no more warnings
        combine_outputs(out)


def test_a_symlinked_parts_folder_is_refused_up_front(files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "parts").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    scorer = Stats()
    with pytest.raises(ParameterError, match="parts: must be a real folder"):
        run_inference(scorer, files, out, **OPTIONS)
    assert scorer.calls == []


# ------------------------------------------------------------------------------------------ 4: row ids


def test_a_submission_refuses_inputs_sharing_a_stem_before_any_work(tmp_path, rng):
    a, b = write(tmp_path / "a" / "rec.wav", 2.0, rng), write(tmp_path / "b" / "rec.wav", 2.0, rng)
    other = write(tmp_path / "a" / "other.wav", 1.0, rng)
    scorer = Stats()
    out = tmp_path / "sub.csv"
    with pytest.raises(ParameterError, match=rf"inputs share the file name 'rec': {a}, {b}; .*row_ids") as caught:
        run_inference(scorer, [tmp_path / "a", tmp_path / "b"], out, kind="submission", engine=EngineOptions(shard="1/2"))  # any shard
    assert "\n" not in str(caught.value)
    assert scorer.calls == [] and not out.exists() and not (tmp_path / ".sub.csv.parts").exists()  # no run.json
    assert run_inference(scorer, [a, other], out, kind="submission").line() == "2 files, 3 windows, 0 skipped"
    run_inference(Stats(), [tmp_path / "a", tmp_path / "b"], tmp_path / "det", **OPTIONS)  # detections: names get a hash


def test_write_submission_refuses_repeated_row_ids(tmp_path):
    from birdcall.infer import write_submission

    index = pd.MultiIndex.from_tuples([("/a/rec.wav", 0.0, 5.0), ("/b/rec.wav", 0.0, 5.0)], names=["file", "start_time", "end_time"])
    scores = pd.DataFrame({"x": np.float32([0.1, 0.2])}, index=index)
    with pytest.raises(ParameterError, match="row_id.*rec_5 would repeat"):
        write_submission(scores, tmp_path / "sub.csv")
    assert not (tmp_path / "sub.csv").exists()


# ------------------------------------------------------------------------------------------ 7: combined.wav


def test_an_input_named_combined_keeps_its_own_raven_table(tmp_path, rng):
    paths = [write(tmp_path / "audio" / "combined.wav", 2.0, rng), write(tmp_path / "audio" / "other.wav", 3.0, rng)]
    out = tmp_path / "out"
    run_inference(Stats(), paths, out, **OPTIONS)
    own = pd.read_csv(out / "raven" / "combined.selections.txt", sep="\t")
    assert "Begin Path" not in own.columns and len(own) == 2 * 2  # combined.wav's 2 windows x 2 species
    everything = pd.read_csv(out / COMBINED_RAVEN, sep="\t")
    assert sorted(set(everything["Begin Path"])) == sorted(map(str, paths)) and len(everything) == 5 * 2
    assert sorted(p.name for p in (out / "audacity").iterdir()) == ["combined.txt", "other.txt"]


# ------------------------------------------------------------------------------------------ 8: runs killed by a file


def test_started_is_recorded_before_the_first_block_is_decoded(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = producers.stream
    seen = []

    def stream(path, **kwargs):
        manifest = out / "manifest.jsonl"
        seen.append([r for r in lines(manifest) if r["status"] == "started" and r["file"] == str(path)])
        return real(path, **kwargs)

    monkeypatch.setattr(producers, "stream", stream)
    run_inference(Stats(), files, out, **OPTIONS)
    assert len(seen) == 3 and all(len(found) == 1 for found in seen)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_normal_run_leaves_no_death_and_a_rerun_adds_no_line(files, tmp_path, workers):
    out = tmp_path / "out"
    run_inference(Stats(), files, out, detection=OPTIONS["detection"], engine=EngineOptions(batch_size=3, workers=workers))
    records = lines(out / "manifest.jsonl")
    for file in map(str, files):  # every file: started, then done
        statuses = [r["status"] for r in records if r.get("file") == file]
        assert statuses == ["started", "done"]
    assert run_state.deaths(out / "manifest.jsonl") == {}
    before = (out / "manifest.jsonl").read_bytes()
    scorer = Stats()
    assert run_inference(scorer, files, out, detection=OPTIONS["detection"], engine=EngineOptions(batch_size=3, workers=workers)).resumed == 3 and scorer.calls == []
    assert (out / "manifest.jsonl").read_bytes() == before


def started(file, run):
    return {"file": str(file), "status": "started", "run": run}


def test_a_file_that_killed_one_run_is_retried_and_one_that_killed_two_is_skipped(files, tmp_path):
    out = tmp_path / "out"
    run_inference(Stats(), files[:2], out, **OPTIONS)  # rec0, rec1 done; then two runs die on rec2
    manifest = out / "manifest.jsonl"
    finished = lines(manifest)
    write_lines(manifest, [*finished, started(files[2], "r1")])
    once = tmp_path / "once"
    shutil.copytree(out, once)
    scorer = Stats()
    with pytest.warns(RunStateWarning, match="rec2.wav: the previous run died while processing this file; trying it once more"):
        summary = run_inference(scorer, files, once, **OPTIONS)
    assert summary.skipped == 0 and summary.complete and sum(scorer.calls) > 0  # retried, and it went fine

    write_lines(manifest, [*finished, started(files[2], "r1"), started(files[2], "r2")])
    scorer = Stats()
    summary = run_inference(scorer, files, out, **OPTIONS)
    assert scorer.calls == [] and summary.skipped == 1 and summary.resumed == 2
    assert summary.errors == ((str(files[2]), run_state.DIED_TWICE),)
    errors = pd.read_csv(out / "errors.csv")
    assert errors["file"].tolist() == [str(files[2])] and errors["reason"][0].startswith("the run died twice while processing this file; skipped")
    before = manifest.read_bytes()
    assert run_inference(Stats(), files, out, **OPTIONS).skipped == 1 and manifest.read_bytes() == before  # no growth

    again = Stats()  # retrying failed files gives it another chance
    assert run_inference(again, files, out, retry_failed=True, **OPTIONS).skipped == 0 and sum(again.calls) > 0


def test_only_the_last_file_a_dead_run_started_is_blamed_and_stopped_runs_never(files, tmp_path):
    out = tmp_path / "out"
    run_inference(Stats(), files[:1], out, **OPTIONS)
    manifest = out / "manifest.jsonl"
    finished = lines(manifest)
    a, x = files[1], files[2]
    # two dead runs, each with rec1 still in flight when rec2 was being decoded
    write_lines(manifest, [*finished, started(a, "r1"), started(x, "r1"), started(a, "r2"), started(x, "r2")])
    assert run_state.deaths(manifest) == {str(x): 2}
    # runs that stopped on an exception (Ctrl-C) blame nobody; a done/failed record clears what came before
    write_lines(manifest, [*finished, started(x, "r1"), {"status": "stopped", "run": "r1"}, started(x, "r2"),
                           {"status": "stopped", "run": "r2"}, started(a, "r3"), {"file": str(a), "status": "failed", "reason": "x"}])
    assert run_state.deaths(manifest) == {}
    write_lines(manifest, [*finished, started(a, "r1"), started(x, "r1"), started(a, "r2"), started(x, "r2")])
    scorer = Stats()
    summary = run_inference(scorer, files, out, **OPTIONS)
    assert [Path(f).name for f, _ in summary.errors] == ["rec2.wav"] and sum(scorer.calls) > 0  # rec1 scored


def test_a_file_that_kills_the_run_is_skipped_after_the_second_death(files, tmp_path, monkeypatch):
    """The real thread path: rec1 "kills" the process as it is decoded (a death: no stopped record is written)."""
    out = tmp_path / "out"
    real_stream, real_append = producers.stream, run_state.Manifest.append
    decoded = []

    def stream(path, **kwargs):
        decoded.append(Path(path).name)
        if Path(path).name == "rec1.wav":
            raise KeyboardInterrupt  # stands for SIGKILL / the OOM killer ...
        return real_stream(path, **kwargs)

    def append(self, record):
        if record.get("status") != "stopped":  # ... which leaves no trace: no stopped record
            real_append(self, record)

    monkeypatch.setattr(producers, "stream", stream)
    monkeypatch.setattr(run_state.Manifest, "append", append)
    with pytest.raises(KeyboardInterrupt):
        run_inference(Stats(), files, out, **OPTIONS)
    with pytest.warns(RunStateWarning, match="rec1.wav: the previous run died"), pytest.raises(KeyboardInterrupt):
        run_inference(Stats(), files, out, **OPTIONS)
    decoded.clear()
    summary = run_inference(Stats(), files, out, **OPTIONS)
    assert "rec1.wav" not in decoded
    assert summary.errors == ((str(files[1]), run_state.DIED_TWICE),) and summary.complete
    assert sorted(set(pd.read_csv(out / "detections.csv")["file"])) == [str(files[0]), str(files[2])]


def test_an_exception_is_not_a_death(files, tmp_path, monkeypatch):
    out = tmp_path / "out"

    class Interrupted(Stats):
        def __call__(self, windows):
            raise KeyboardInterrupt

    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            run_inference(Interrupted(), files, out, **OPTIONS)
    assert run_state.deaths(out / "manifest.jsonl") == {}
    assert run_inference(Stats(), files, out, **OPTIONS).skipped == 0


# ------------------------------------------------------------------------------------------ 10: unwritable outputs


def test_an_out_that_cannot_be_written_is_refused_before_scoring(files, tmp_path):
    scorer = Stats()
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ParameterError, match=r"folder.csv: is a folder; the submission is a CSV file"):
        run_inference(scorer, files, tmp_path / "folder.csv", kind="submission")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match=r"sub.csv: cannot be created, .*file is not a folder"):
        run_inference(scorer, files, tmp_path / "file" / "deeper" / "sub.csv", kind="submission")
    with pytest.raises(ParameterError, match=r"file: exists and is not a folder"):
        run_inference(scorer, files, tmp_path / "file", **OPTIONS)
    with pytest.raises(ParameterError, match=r"file: exists and is not a folder"):
        merge_outputs(tmp_path / "file", [])
    assert scorer.calls == [] and not list(tmp_path.glob(".*.parts"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_in_a_read_only_folder_is_refused_before_scoring(files, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ParameterError, match="permission denied"):
            run_inference(Stats(), files, locked / "sub.csv", kind="submission")
    finally:
        locked.chmod(0o755)


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_on_the_outputs_is_one_line_and_the_work_is_kept(files, tmp_path, monkeypatch):
    from birdcall.infer import writers

    out = tmp_path / "sub.csv"
    monkeypatch.setattr(writers, "write_submission", enospc)
    with pytest.raises(OutputWriteError) as caught:
        run_inference(Stats(), files, out, kind="submission")
    err = caught.value
    assert isinstance(err, BirdcallError) and isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert str(err) == f"{out}: cannot write (No space left on device); the files finished so far are kept: rerun the same command to resume"
    monkeypatch.undo()
    scorer = Stats()
    assert run_inference(scorer, files, out, kind="submission").resumed == 3 and scorer.calls == []
    assert len(pd.read_csv(out)) == 2 + 3 + 4


def test_disk_full_on_a_part_stops_the_run_without_blaming_a_file(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(pd.DataFrame, "to_parquet", enospc)
    with pytest.raises(OutputWriteError, match=r"parts/rec0-[0-9a-f]{16}\.parquet: cannot write \(No space left on device\)"):
        run_inference(Stats(), files, out, **OPTIONS)
    assert not list((out / "parts").iterdir())  # the temporary was removed
    monkeypatch.undo()
    assert run_state.deaths(out / "manifest.jsonl") == {}
    assert run_inference(Stats(), files, out, **OPTIONS).complete


# ------------------------------------------------------------------------------------------ 12: stale temporaries


def test_a_run_removes_the_temporaries_a_killed_run_left(files, tmp_path):
    out = tmp_path / "out"
    run_inference(Stats(), files[:1], out, **OPTIONS)
    stale = [out / "parts" / ".rec9-0123456789abcdef.parquet.0a1b2c3d4e5f.birdcall.tmp", out / ".detections.csv.ffffffffffff.birdcall.tmp",
             out / "raven" / ".rec0.selections.txt.123456789abc.birdcall.tmp", out / "plans" / ".shard-0-of-1.json.00000000000a.birdcall.tmp"]
    kept = [out / ".notes.txt.tmp", out / "parts" / "mine.birdcall.tmp.bak", out / "user.txt"]
    for path in stale + kept:
        path.write_text("x")
    run_inference(Stats(), files, out, **OPTIONS)
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in kept)

    csv = tmp_path / "sub.csv"
    run_inference(Stats(), files[:1], csv, kind="submission")
    mine, theirs = tmp_path / ".sub.csv.a1b2c3d4e5f6.birdcall.tmp", tmp_path / ".other.csv.a1b2c3d4e5f6.birdcall.tmp"
    in_state = tmp_path / ".sub.csv.parts" / "parts" / ".x.parquet.a1b2c3d4e5f6.birdcall.tmp"
    for path in (mine, theirs, in_state):
        path.write_text("x")
    run_inference(Stats(), files[:1], csv, kind="submission")
    assert not mine.exists() and not in_state.exists() and theirs.exists()  # beside the CSV: only the CSV's


def test_temporaries_are_left_alone_while_another_run_uses_the_folder(files, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    run_inference(Stats(), files[:1], out, **OPTIONS)
    live = out / "parts" / ".rec7-0123456789abcdef.parquet.0a1b2c3d4e5f.birdcall.tmp"
    live.write_text("being written by another shard")
    with open(out / ".running", "a+") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_SH)  # as a run of another shard holds it
        run_inference(Stats(), files, out, **OPTIONS)
        assert live.exists()
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    run_inference(Stats(), files, out, **OPTIONS)
    assert not live.exists()


# ------------------------------------------------------------------------------------------ odd file names


def test_a_name_with_a_unicode_line_separator_is_recorded_once_and_resumed(tmp_path, rng):
    path = write(tmp_path / "audio" / "dawn\u2028chorus\x85.wav", 2.0, rng)  # JSON leaves U+2028 and U+0085 raw
    out = tmp_path / "out"
    run_inference(Stats(), [path], out, **OPTIONS)
    scorer = Stats()
    assert run_inference(scorer, [path], out, **OPTIONS).resumed == 1 and scorer.calls == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_a_name_that_is_not_utf8_is_refused_before_any_work(tmp_path, rng):
    good = write(tmp_path / "audio" / "good.wav", 1.0, rng)
    bad = os.fsdecode(os.fsencode(tmp_path / "audio") + b"/caf\xe9.wav")  # Latin-1 bytes
    try:
        shutil.copyfile(good, bad)
    except (OSError, UnicodeEncodeError):
        pytest.skip("the file system refuses names that are not UTF-8")
    scorer = Stats()
    with pytest.raises(ParameterError, match=r"caf\\xe9.wav: the file name is not valid UTF-8"):
        run_inference(scorer, [tmp_path / "audio"], tmp_path / "out", **OPTIONS)
    assert scorer.calls == [] and not (tmp_path / "out").exists()
