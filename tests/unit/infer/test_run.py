"""The batch inference engine end to end (birdcall.infer.run and the modules it is made of): windows, batching
across files, TTA by time shift, overlap, worker processes, failures, inputs and shards, the resumable, shardable
on-disk runs, and score_file / predict_files beside them. The decoding thread alone: test_producers.py."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.audio import clip_times, num_clips, write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer import batching, producers
from birdcall.infer.batching import score_files
from birdcall.infer.inputs import discover_inputs, select_shard
from birdcall.infer.long_recording import WindowSpec, iter_window_blocks
from birdcall.infer.outputs import merge_outputs
from birdcall.infer.producers import IDLE, Block, Done, Start
from birdcall.infer.run import DetectionOptions, EngineOptions, WindowOptions, run_inference

RATE = 8000  # the fake scorer's rate: files are written at it, so nothing is resampled and samples stay exact


class WindowStats:
    """A scorer whose outputs can be computed by hand: each window's mean, first and last sample, and peak."""

    labels = LabelSet(("mean", "first", "last", "peak"), common_names=("Mean", "First", "Last", "Peak"))
    features = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=16, fmin=0.0, fmax=4000.0, clip_duration=1.0)

    def __init__(self, fail_after: int | None = None):
        self.calls: list[int] = []
        self.fail_after = fail_after

    def __call__(self, windows):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # as if the run were stopped here
        self.calls.append(len(windows))
        return np.stack([windows.mean(axis=1), windows[:, 0], windows[:, -1], np.abs(windows).max(axis=1)], axis=1).astype(np.float32)


def write(path, samples):
    write_audio(path, np.asarray(samples, dtype=np.float32), RATE, subtype="FLOAT")
    return Path(path)


def ramp(num_samples):
    """(n + 1) / 32768: distinct, in (0, 1), exact in float32."""
    return (np.arange(num_samples) + 1) / 32768.0


@pytest.fixture
def recordings(tmp_path, rng):
    """Four readable files of different lengths (one shorter than a clip), a text file named .ogg, a truncated FLAC."""
    folder = tmp_path / "audio"
    folder.mkdir()
    good = [write(folder / f"rec{i}.wav", rng.random(int(seconds * RATE))) for i, seconds in enumerate([2.5, 3.0, 0.6, 4.2])]
    (folder / "notes.ogg").write_text("this is not audio")
    flac = write_audio(folder / "cut.flac", rng.random(3 * RATE).astype(np.float32) * 0.5, RATE)
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2])
    return folder, good


def by_file(results):
    return {r.path: r for r in results}


# ------------------------------------------------------------------------------------------------ windows


@settings(max_examples=120, deadline=None)
@given(
    total=st.integers(1, 2000),
    clip=st.integers(1, 300),
    hop=st.integers(1, 300),
    shifts=st.lists(st.integers(-400, 400), min_size=1, max_size=3),
    sizes=st.lists(st.integers(0, 500), max_size=6),
    max_windows=st.integers(1, 5),
)
def test_shifted_windows_are_the_neighbouring_audio_zero_padded(total, clip, hop, shifts, sizes, max_windows):
    signal = np.arange(1, total + 1, dtype=np.float32)  # nonzero everywhere: padding is visible
    cuts = np.cumsum(sizes)
    chunks = np.split(signal, cuts[cuts < total])
    blocks = list(iter_window_blocks(chunks, clip_samples=clip, hop_samples=hop, shift_samples=shifts, max_windows=max_windows))
    starts = np.concatenate([b.starts for b in blocks])
    assert starts.tolist() == [k * hop for k in range(num_clips(total, clip_samples=clip, hop_samples=hop))]
    assert all(1 <= len(b.starts) <= max_windows for b in blocks)
    padded = np.concatenate([np.zeros(500, np.float32), signal, np.zeros(clip + 900, np.float32)])
    for block in blocks:
        got = block.windows(clip_samples=clip, shift_samples=shifts)
        for k, start in enumerate(block.starts):
            for j, shift in enumerate(shifts):
                np.testing.assert_array_equal(got[k, j], padded[500 + start + shift : 500 + start + shift + clip])


def test_tta_averages_the_scores_of_the_shifted_windows(tmp_path):
    path = write(tmp_path / "ramp.wav", ramp(20_000))  # 2.5 s: windows start at 0, 1, 2 s (the last one padded)
    scorer = WindowStats()
    spec = WindowSpec(RATE, 1.0, tta_shifts=(0.0, 0.25, -0.25))  # 0, +2000, -2000 samples
    (result,) = score_files(scorer, [path], spec=spec, batch_size=32, eager=False)  # full batches: one call below
    assert result.scores.index.get_level_values("start_time").tolist() == [0.0, 1.0, 2.0]
    # first sample of each window at the three shifts: (0 + 1, 2000 + 1, before the start -> 0) / 32768 ...
    first = np.array([(1 + 2001 + 0) / 3, (8001 + 10001 + 6001) / 3, (16001 + 18001 + 14001) / 3]) / 32768
    # ... and last sample (start + 7999): the last window's shifted ends all fall after the end of the file -> 0
    last = np.array([(8000 + 10000 + 6000) / 3, (16000 + 18000 + 14000) / 3, 0.0]) / 32768
    np.testing.assert_allclose(result.scores["first"].to_numpy(), first, rtol=1e-6)
    np.testing.assert_allclose(result.scores["last"].to_numpy(), last, rtol=1e-6)
    assert result.scores["first"].dtype == np.float32
    assert scorer.calls == [9]  # 3 windows x 3 shifts in one call

    (plain,) = score_files(WindowStats(), [path], spec=WindowSpec(RATE, 1.0), batch_size=32)
    np.testing.assert_array_equal(plain.scores["first"].to_numpy(), np.float32([1 / 32768, 8001 / 32768, 16001 / 32768]))


def test_hop_gives_overlapping_windows_of_the_clip_table(tmp_path):
    path = write(tmp_path / "ramp.wav", ramp(20_800))  # 2.6 s
    (result,) = score_files(WindowStats(), [path], spec=WindowSpec(RATE, 1.0, hop=0.25), batch_size=4)
    table = clip_times(2.6, clip_duration=1.0, hop=0.25, sample_rate=RATE)
    assert len(result.scores) == 8  # starts 0, 0.25, ..., 1.75; the last window is padded past 2.6 s
    np.testing.assert_array_equal(result.scores.index.get_level_values("start_time"), table["start_time"])
    np.testing.assert_array_equal(result.scores.index.get_level_values("end_time"), table["end_time"])
    np.testing.assert_array_equal(result.scores["first"].to_numpy(), np.float32((np.arange(8) * 2000 + 1) / 32768))


def test_windows_are_batched_across_files(tmp_path):
    paths = [write(tmp_path / f"{name}.wav", ramp(3 * RATE)) for name in "abc"]  # 3 windows each
    scorer = WindowStats()
    results = list(score_files(scorer, paths, batch_size=4, eager=False))
    assert scorer.calls == [4, 4, 1]  # 9 windows in batches that straddle the files
    assert [r.path for r in results] == [str(p) for p in paths]
    for r in results:
        np.testing.assert_array_equal(r.scores["first"].to_numpy(), np.float32([1 / 32768, 8001 / 32768, 16001 / 32768]))


def test_a_block_ends_with_the_chunk_that_completed_it():
    """Blocks are handed on as soon as a chunk completes windows, not only when max_windows are waiting."""
    signal = np.arange(1, 71, dtype=np.float32)
    chunks = np.split(signal, [25, 30])  # 25, 5 and 40 samples
    blocks = list(iter_window_blocks(iter(chunks), clip_samples=10, hop_samples=10, max_windows=32))
    assert [b.starts.tolist() for b in blocks] == [[0, 10], [20], [30, 40, 50, 60]]
    capped = list(iter_window_blocks(iter(chunks), clip_samples=10, hop_samples=10, max_windows=3))
    assert [b.starts.tolist() for b in capped] == [[0, 10], [20], [30, 40, 50], [60]]


def test_an_idle_producer_gets_the_queued_windows_scored_with_unchanged_scores(tmp_path):
    """On "idle" the batcher scores what is queued (a partial batch); the scores are those of full batches."""
    audio = (ramp(7 * RATE) / 2).astype(np.float32)  # < 1: stored exactly
    path = write(tmp_path / "a.wav", audio)
    spec = WindowSpec(RATE, 1.0)
    blocks = list(iter_window_blocks(iter([audio[: 3 * RATE], audio[3 * RATE :]]), clip_samples=RATE, hop_samples=RATE, max_windows=32))
    assert [len(b.starts) for b in blocks] == [3, 4]
    scorer = WindowStats()
    batcher = batching._Batcher(scorer, [path], WindowStats.labels, spec, per_batch=32)
    assert batcher.feed(Start(0)) == [] and batcher.feed(IDLE) == [] and scorer.calls == []  # nothing queued
    assert batcher.feed(Block(0, blocks[0])) == [] and scorer.calls == []  # 3 < 32: waits for more
    assert batcher.feed(IDLE) == [] and scorer.calls == [3]  # ...unless nothing else is decoded
    batcher.feed(Block(0, blocks[1]))
    (eager,) = batcher.feed(Done(0, 7.0)) + batcher.feed(IDLE) + batcher.close()
    assert scorer.calls == [3, 4]
    (full,) = score_files(WindowStats(), [path], spec=spec, batch_size=32, eager=False)
    pd.testing.assert_frame_equal(eager.scores, full.scores)


# ------------------------------------------------------------------------------------------------ processes


def test_worker_processes_give_exactly_the_in_process_results(recordings):
    folder, good = recordings
    paths = discover_inputs([folder])
    spec = WindowSpec(RATE, 1.0, hop=0.5, tta_shifts=(0.0, 0.25, -0.25), chunk_duration=0.7)  # many chunks per file
    local = by_file(score_files(WindowStats(), paths, spec=spec, batch_size=5, workers=0))
    parallel = by_file(score_files(WindowStats(), paths, spec=spec, batch_size=5, workers=2))
    assert local.keys() == parallel.keys() == {str(p) for p in paths}
    for path in good:
        a, b = local[str(path)], parallel[str(path)]
        assert a.ok and b.ok and a.duration == b.duration
        pd.testing.assert_frame_equal(a.scores, b.scores, check_exact=True)
        seconds = a.duration
        assert len(a.scores) == num_clips(int(round(seconds * RATE)), clip_samples=RATE, hop_samples=RATE // 2)
    for name, cause in [("notes.ogg", "not an audio file"), ("cut.flac", "truncated")]:
        a, b = local[str(folder / name)], parallel[str(folder / name)]
        assert a.scores is None and cause in a.reason and a.reason == b.reason


def test_a_worker_that_dies_fails_only_its_file(recordings, monkeypatch):
    _, good = recordings
    real = producers.iter_file_events

    def events(index, path, spec, *, max_windows):
        if Path(path).name == "rec1.wav":
            yield Start(index)
            os._exit(3)  # a hard crash of the decoder
        yield from real(index, path, spec, max_windows=max_windows)

    monkeypatch.setattr(producers, "iter_file_events", events)  # inherited by forked workers
    results = by_file(score_files(WindowStats(), good, batch_size=4, workers=2, start_method="fork"))
    assert results[str(good[1])].reason == "decoding process died (exit code 3) while reading this file"
    for path in good[:1] + good[2:]:
        assert results[str(path)].ok and len(results[str(path)].scores) > 0


# ------------------------------------------------------------------------------------------------ inputs, shards


def test_discover_inputs_recurses_sorts_and_deduplicates(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    a = write(tmp_path / "a.wav", ramp(100))
    nested = write(tmp_path / "b" / "deep" / "x.WAV", ramp(100))  # extensions match in any case
    (tmp_path / "b" / "readme.txt").write_text("not audio")
    os.symlink(a, tmp_path / "b" / "link.wav")
    found = discover_inputs([tmp_path / "b", a, tmp_path / "a.wav", tmp_path / "b" / ".." / "a.wav"])
    assert found == sorted([a, nested], key=str)  # the symlink names a file already listed
    with pytest.raises(ParameterError, match="missing.wav: no such file or folder"):
        discover_inputs([a, tmp_path / "missing.wav"])


def test_shards_partition_the_sorted_inputs():
    paths = [Path(f"/x/{name}.wav") for name in "gcafbed"]
    shards = [select_shard(paths, f"{i}/3") for i in range(3)]
    assert shards[0] == [Path("/x/a.wav"), Path("/x/d.wav"), Path("/x/g.wav")]
    assert sorted((p for shard in shards for p in shard), key=str) == sorted(paths, key=str)
    with pytest.raises(ParameterError):
        select_shard(paths, "3/3")


# ------------------------------------------------------------------------------------------------ runs on disk


def outputs(out: Path) -> dict[str, bytes]:
    """Every derived output of an analyze folder, by relative path."""
    files = ["detections.csv", "errors.csv", "raven_combined.selections.txt"]
    files += [str(p.relative_to(out)) for p in sorted(out.glob("raven/*")) + sorted(out.glob("audacity/*"))]
    return {name: (out / name).read_bytes() for name in files}


DETECTION = DetectionOptions(min_confidence=0.0)
OPTIONS = {"detection": DETECTION, "engine": EngineOptions(batch_size=3)}


def test_run_writes_parts_manifest_and_every_output(recordings, tmp_path):
    folder, _ = recordings
    out = tmp_path / "out"
    summary = run_inference(WindowStats(), [folder], out, **OPTIONS)
    assert summary.line() == "6 files, 12 windows, 2 skipped" and summary.complete
    errors = pd.read_csv(out / "errors.csv")
    assert [Path(f).name for f in errors["file"]] == ["cut.flac", "notes.ogg"]
    assert "truncated" in errors["reason"][0] and "not an audio file" in errors["reason"][1]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in records) == ["done"] * 4 + ["failed"] * 2 + ["started"] * 6  # started before the others
    assert len(list((out / "parts").glob("*.parquet"))) == 4
    detections = pd.read_csv(out / "detections.csv")
    assert len(detections) == 12 * 4  # min_confidence 0: every (window, species) of every readable file
    assert sorted(p.name for p in (out / "raven").iterdir()) == [f"rec{i}.selections.txt" for i in range(4)]
    assert (out / "raven_combined.selections.txt").read_text().startswith("Selection\tView")
    assert sorted(p.name for p in (out / "audacity").iterdir()) == [f"rec{i}.txt" for i in range(4)]
    parquet = pd.read_parquet(out / "detections.parquet")
    pd.testing.assert_frame_equal(parquet[["start_time", "end_time"]], detections[["start_time", "end_time"]])


def test_interrupted_run_resumes_without_duplicates_or_gaps(recordings, tmp_path):
    folder, good = recordings
    reference = tmp_path / "reference"
    run_inference(WindowStats(), [folder], reference, **OPTIONS)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_inference(WindowStats(fail_after=2), [folder], out, **OPTIONS)  # stops in the middle of the run
    recorded = [line for line in (out / "manifest.jsonl").read_text().splitlines() if json.loads(line)["status"] in ("done", "failed")]
    assert 0 < len(recorded) < 6
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('{"file": "' + str(good[3]))  # a line torn by a kill

    scorer = WindowStats()
    summary = run_inference(scorer, [folder], out, **OPTIONS)
    assert summary.resumed == len(recorded) and summary.line() == "6 files, 12 windows, 2 skipped"
    assert 0 < sum(scorer.calls) < 12  # only the windows of the files not done before
    assert outputs(out) == outputs(reference)
    detections = pd.read_csv(out / "detections.csv")
    assert len(detections) == 12 * 4 and not detections.duplicated(["file", "start_time", "code"]).any()

    again = WindowStats()
    assert run_inference(again, [folder], out, **OPTIONS).resumed == 6 and again.calls == []
    with pytest.raises(ParameterError, match="different hop"):
        run_inference(WindowStats(), [folder], out, window=WindowOptions(hop=0.5), **OPTIONS)


def test_shards_in_one_folder_or_merged_equal_one_run(recordings, tmp_path):
    folder, _ = recordings
    single = tmp_path / "single"
    run_inference(WindowStats(), [folder], single, **OPTIONS)

    shared = tmp_path / "shared"
    first = run_inference(WindowStats(), [folder], shared, detection=DETECTION, engine=EngineOptions(batch_size=3, shard="0/2"))
    assert not first.complete and "shard 1/2" in first.missing and first.files == 3
    second = run_inference(WindowStats(), [folder], shared, detection=DETECTION, engine=EngineOptions(batch_size=3, shard=(1, 2)))
    assert second.complete and first.files + second.files == 6
    assert outputs(shared) == outputs(single)

    apart = [tmp_path / "part0", tmp_path / "part1"]
    for i, out in enumerate(apart):
        run_inference(WindowStats(), [folder], out, detection=DETECTION, engine=EngineOptions(batch_size=3, shard=f"{i}/2"))
    merged = merge_outputs(apart[0], [apart[1]])
    assert merged["complete"] and merged["files"] == 6 and merged["skipped"] == 2
    assert outputs(apart[0]) == outputs(single)


def test_submission_run_has_one_row_per_window_in_label_order(tmp_path):
    paths = [write(tmp_path / "b_site.wav", ramp(int(2.5 * RATE))), write(tmp_path / "a_site.wav", ramp(RATE // 2))]
    out = tmp_path / "sub.csv"
    summary = run_inference(WindowStats(), paths, out, kind="submission", engine=EngineOptions(batch_size=2))
    assert summary.line() == "2 files, 4 windows, 0 skipped"
    sub = pd.read_csv(out)
    assert sub.columns.tolist() == ["row_id", "mean", "first", "last", "peak"]
    assert sub["row_id"].tolist() == ["a_site_1", "b_site_1", "b_site_2", "b_site_3"]
    np.testing.assert_allclose(sub["first"], [1 / 32768, 1 / 32768, 8001 / 32768, 16001 / 32768], rtol=1e-5)
    assert (tmp_path / ".sub.csv.parts" / "manifest.jsonl").is_file()


def test_scores_run_writes_a_parquet_table_with_its_settings_and_resumes(tmp_path):
    import pyarrow.parquet as pq

    from birdcall.infer.writers import read_scores_parquet

    for site in ("a", "b"):  # two inputs share the stem "rec": fine here (rows are keyed by the whole path)
        (tmp_path / site).mkdir()
    paths = [write(tmp_path / "b" / "rec.wav", ramp(int(2.5 * RATE))), write(tmp_path / "a" / "rec.wav", ramp(RATE // 2))]
    (tmp_path / "a" / "bad.wav").write_text("not audio")
    out = tmp_path / "scores.parquet"
    summary = run_inference(WindowStats(), [*paths, tmp_path / "a" / "bad.wav"], out, kind="scores", engine=EngineOptions(batch_size=2))
    assert summary.line() == "3 files, 4 windows, 1 skipped"
    schema = pq.read_schema(out)
    assert schema.names == ["file", "start_time", "end_time", "mean", "first", "last", "peak"]
    assert [str(schema.field(n).type) for n in schema.names] == ["string", "double", "double"] + ["float"] * 4
    settings = json.loads(schema.metadata[b"birdcall"])
    assert settings == json.loads((tmp_path / ".scores.parquet.parts" / "run.json").read_text())
    assert settings["kind"] == "scores" and settings["labels"]["codes"] == ["mean", "first", "last", "peak"]
    table = pd.read_parquet(out)
    assert table["file"].tolist() == [str(paths[1])] + [str(paths[0])] * 3  # absolute paths, file order then time
    assert table["start_time"].tolist() == [0.0, 0.0, 1.0, 2.0] and table["end_time"].tolist() == [1.0, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(table["first"], [1 / 32768, 1 / 32768, 8001 / 32768, 16001 / 32768], rtol=1e-6)
    assert pd.read_csv(tmp_path / ".scores.parquet.parts" / "errors.csv")["file"].tolist() == [str(tmp_path / "a" / "bad.wav")]
    scores, read_settings = read_scores_parquet(out)
    assert scores.index.names == ["file", "start_time", "end_time"] and scores.dtypes.tolist() == [np.float32] * 4
    assert read_settings == settings

    before = out.read_bytes()
    again = WindowStats()
    assert run_inference(again, [*paths, tmp_path / "a" / "bad.wav"], out, kind="scores", engine=EngineOptions(batch_size=2)).resumed == 3
    assert again.calls == [] and out.read_bytes() == before
    with pytest.raises(ParameterError, match="the scores are a Parquet file"):
        run_inference(WindowStats(), paths, tmp_path / "a", kind="scores")


def test_score_file_gives_exactly_the_rows_the_engine_writes_for_the_file(recordings, tmp_path):
    """score_file is the engine's work on one file, without run state: a scores run (windows batched across files,
    with overlap and TTA) writes the same rows for each file."""
    from birdcall.infer import score_file
    from birdcall.infer.writers import read_scores_parquet

    _, good = recordings
    window = WindowOptions(hop=0.5, tta_shifts=(0.0, 0.25))
    out = tmp_path / "scores.parquet"
    run_inference(WindowStats(), good, out, kind="scores", window=window, engine=EngineOptions(batch_size=5))
    written, _ = read_scores_parquet(out)
    spec = window.spec(RATE, 1.0, "zero")
    for path in good:
        alone = score_file(WindowStats(), path, spec, batch_size=3)
        assert len(alone) > 0
        pd.testing.assert_frame_equal(alone, written.loc[[str(path)]], check_exact=True)


def test_predict_files_keeps_input_order_and_lists_unreadable_files(recordings):
    from birdcall.infer import predict_file, predict_files

    folder, good = recordings
    scorer = WindowStats()
    kwargs = {"labels": scorer.labels, "spec": WindowSpec(RATE, 1.0, hop=0.5), "batch_size": 4}
    paths = [good[3], folder / "notes.ogg", good[0]]
    result = predict_files(scorer, paths, show_progress=False, **kwargs)
    expected = pd.concat([predict_file(scorer, good[3], **kwargs), predict_file(scorer, good[0], **kwargs)])
    pd.testing.assert_frame_equal(result.scores, expected, check_exact=True)
    assert [(Path(f).name, "not an audio file" in why) for f, why in result.errors] == [("notes.ogg", True)]


def test_files_without_detections_still_get_their_tables(recordings, tmp_path):
    _, good = recordings
    out = tmp_path / "out"
    summary = run_inference(WindowStats(), good[:2], out, detection=DetectionOptions(min_confidence=1.0))  # nothing passes
    assert summary.line() == "2 files, 6 windows, 0 skipped"
    assert pd.read_csv(out / "detections.csv").empty and len(pd.read_parquet(out / "detections.parquet")) == 0
    assert (out / "raven" / "rec0.selections.txt").read_text().startswith("Selection\tView")
    assert (out / "audacity" / "rec1.txt").read_text() == ""


def test_a_wrap_model_gets_a_short_file_tiled_as_in_training(tmp_path):
    """The model's FeatureConfig.pad reaches the window cutter: a 0.3-s file fills the 1-s window by repetition."""
    import dataclasses

    class WrapStats(WindowStats):
        features = dataclasses.replace(WindowStats.features, pad="wrap")

    y = ramp(int(0.3 * RATE))
    paths = [write(tmp_path / "short.wav", y), write(tmp_path / "long.wav", ramp(int(1.5 * RATE)))]
    for scorer, expected in ((WrapStats(), y[np.arange(RATE) % len(y)]), (WindowStats(), np.concatenate([y, np.zeros(RATE - len(y))]))):
        out = tmp_path / f"{type(scorer).__name__}.csv"
        run_inference(scorer, paths, out, kind="submission", engine=EngineOptions(batch_size=4))
        sub = pd.read_csv(out).set_index("row_id")
        assert sub.loc["short_1", "last"] == pytest.approx(expected[-1], rel=1e-5)
        assert sub.loc["short_1", "mean"] == pytest.approx(expected.mean(), rel=1e-4)
        assert sub.loc["long_2", "last"] == 0.0  # a longer file's final partial window stays zero-padded
