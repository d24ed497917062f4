"""Pseudo-labels: LABELS.parquet from one teacher or an ensemble (teachers at different sample rates), its
metadata and licences, resuming, failed files, and the reader's refusals."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from birdcall.audio import num_clips, write_audio
from birdcall.birdnet.model import BIRDNET_LICENSE, NON_COMMERCIAL_NOTE
from birdcall.data.labels import LabelSet
from birdcall.errors import DataError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.fileio import hash_files
from birdcall.infer.ensemble import run_models
from birdcall.infer.pseudo_labels import (
    FORMAT,
    METADATA_KEY,
    pseudo_label,
    read_pseudo_labels,
    state_dir,
)
from birdcall.testing.signals import chirp, tone

RATE = 32_000
CODES_A = ("aa", "bb", "cc")
CODES_B = ("cc", "aa", "dd")  # another order and one species of its own: aligned by code, the union
FEATURES_A = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0)
FEATURES_B = FeatureConfig(sample_rate=16_000, n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
DURATIONS = {"r1.wav": 2.5, "sub/r2.wav": 1.5}  # relative name -> seconds


def save(path: Path, codes, features: FeatureConfig, seed: int, extra=None) -> Path:
    import torch

    from birdcall.models import create_model, save_model

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = create_model("test_cnn", num_classes=len(codes), features=features)
    torch.random.set_rng_state(state)
    return save_model(model, path, labels=LabelSet(tuple(codes)), extra=extra)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "a": save(folder / "a.safetensors", CODES_A, FEATURES_A, seed=1),
        "b": save(folder / "b.safetensors", CODES_B, FEATURES_B, seed=2),  # 16 kHz: decodes at its own rate
    }


def write_folder(folder: Path, durations: dict) -> Path:
    for i, (name, seconds) in enumerate(durations.items()):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sweep = chirp(start_hz=400.0 + 300 * i, end_hz=3000.0, duration=seconds, sample_rate=RATE) * 0.3
        y = sweep + tone(frequency_hz=700.0 * (i + 1), duration=seconds, sample_rate=RATE, amplitude=0.2)
        write_audio(folder / name, y.astype(np.float32), RATE)
    return folder


@pytest.fixture
def audio(tmp_path):
    return write_folder(tmp_path / "audio", DURATIONS)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, models):
    """One real LABELS.parquet (teacher a) and its audio, read-only: the base of the reader's refusal tests."""
    root = tmp_path_factory.mktemp("shared")
    audio = write_folder(root / "audio", DURATIONS)
    out = root / "labels.parquet"
    pseudo_label([models["a"]], [audio], out, batch_size=4)
    return out, audio


def metadata(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[METADATA_KEY.encode()])


def values(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).set_index(["file", "start", "end"])


# ------------------------------------------------------------------------------------------------ writing


def test_one_row_per_window_at_the_hop_with_relative_names_and_metadata(models, audio, tmp_path):
    out = tmp_path / "labels.parquet"
    summary = pseudo_label([models["a"]], [audio], out, hop=0.5, batch_size=4)
    counts = {name: num_clips(int(s * 32_000), clip_samples=32_000, hop_samples=16_000) for name, s in DURATIONS.items()}
    assert counts == {"r1.wav": 4, "sub/r2.wav": 2}
    assert summary.line() == "2 files, 6 windows, 0 skipped" and summary.errors == () and summary.note is None
    schema = pq.read_schema(out)
    assert schema.names == ["file", "start", "end", *CODES_A]
    assert [str(schema.field(n).type) for n in schema.names] == ["string", "double", "double", "float", "float", "float"]
    table = pd.read_parquet(out)
    assert table["file"].tolist() == ["r1.wav"] * 4 + ["sub/r2.wav"] * 2  # relative to the folder, '/'-separated
    assert table["start"].tolist() == [0.0, 0.5, 1.0, 1.5, 0.0, 0.5]
    assert (table["end"] - table["start"]).tolist() == [1.0] * 6
    probs = table[list(CODES_A)].to_numpy()
    assert probs.dtype == np.float32 and np.all((probs > 0) & (probs < 1))

    meta = metadata(out)
    assert set(meta) == {"format", "labels", "teachers", "method", "power", "clip_duration", "hop", "root", "windows", "files", "skipped", "note"}
    assert meta["format"] == FORMAT and meta["labels"]["codes"] == list(CODES_A)
    assert meta["teachers"] == [{"path": str(models["a"]), "digest": hash_files([models["a"]]), "model": "cnn/test_efficientnet",
                                 "sample_rate": 32_000, "license": None, "note": None}]  # fmt: skip
    assert (meta["method"], meta["power"], meta["clip_duration"], meta["hop"]) == ("mean", None, 1.0, 0.5)
    assert (meta["root"], meta["windows"], meta["files"], meta["skipped"], meta["note"]) == (str(audio), 6, 2, 0, None)

    read = read_pseudo_labels(out, audio_root=audio)
    assert read.files == tuple(audio / name for name in table["file"])
    np.testing.assert_array_equal(read.probs, probs)
    np.testing.assert_array_equal(read.start, table["start"].to_numpy())
    assert read.labels == LabelSet(CODES_A) and read.metadata == meta and len(read) == 6


def test_files_given_one_by_one_are_named_relative_to_their_common_folder(models, audio, tmp_path):
    out = tmp_path / "labels.parquet"
    pseudo_label([models["a"]], [audio / "sub" / "r2.wav", audio / "r1.wav"], out, batch_size=4)
    assert pd.read_parquet(out)["file"].unique().tolist() == ["r1.wav", "sub/r2.wav"]
    pseudo_label([models["a"]], [audio / "sub" / "r2.wav"], tmp_path / "one.parquet", batch_size=4)
    assert pd.read_parquet(tmp_path / "one.parquet")["file"].unique().tolist() == ["r2.wav"]  # root: its folder
    assert metadata(tmp_path / "one.parquet")["root"] == str(audio / "sub")


def test_two_teachers_mean_is_the_mean_of_each_alone_and_other_methods_reuse_their_scores(models, audio, tmp_path):
    for key in ("a", "b"):
        pseudo_label([models[key]], [audio], tmp_path / f"{key}.parquet")
    a, b = values(tmp_path / "a.parquet"), values(tmp_path / "b.parquet")
    assert a.index.equals(b.index) and not np.allclose(a["aa"], b["aa"])  # the same windows, at 32 and 16 kHz
    out = tmp_path / "ab.parquet"
    summary = pseudo_label([models["a"], models["b"]], [audio], out)
    assert summary.line() == "2 files, 5 windows, 0 skipped"
    ab = values(out)
    assert ab.columns.tolist() == ["aa", "bb", "cc", "dd"] and ab.index.equals(a.index)
    for code in ("aa", "cc"):
        np.testing.assert_allclose(ab[code], (a[code] + b[code]) / 2, atol=1e-6)
    np.testing.assert_allclose(ab["bb"], a["bb"], atol=1e-6)  # a species of one teacher: that teacher's
    np.testing.assert_allclose(ab["dd"], b["dd"], atol=1e-6)
    meta = metadata(out)
    assert [(t["path"], t["sample_rate"]) for t in meta["teachers"]] == [(str(models["a"]), 32_000), (str(models["b"]), 16_000)]
    assert meta["labels"]["codes"] == ["aa", "bb", "cc", "dd"]

    # Another method over the same output: the teachers' scores are reused (nothing is scored again).
    ranked = pseudo_label([models["a"], models["b"]], [audio], out, method="rank")
    assert ranked.resumed == 2 and [s.resumed for s in ranked.teachers] == [2, 2]
    rank = values(out)

    def rank01(x):
        return (x.rank(method="average").to_numpy() - 1) / (len(x) - 1)

    np.testing.assert_allclose(rank["aa"], (rank01(a["aa"]) + rank01(b["aa"])) / 2, atol=1e-6)
    assert rank.to_numpy().min() >= 0 and rank.to_numpy().max() <= 1 and metadata(out)["method"] == "rank"
    pseudo_label([models["a"], models["b"]], [audio], out, method="power", power=3.0)
    np.testing.assert_allclose(values(out)["cc"], ((a["cc"] ** 3 + b["cc"] ** 3) / 2) ** (1 / 3), atol=1e-6)
    assert (metadata(out)["method"], metadata(out)["power"]) == ("power", 3.0)


def test_a_run_folder_is_one_teacher_the_mean_of_its_folds(models, audio, tmp_path):
    run = tmp_path / "run"
    folds = [save(run / f"fold{i}" / "best.safetensors", CODES_A, FEATURES_A, seed=10 + i) for i in range(2)]
    out = tmp_path / "run.parquet"
    pseudo_label([run], [audio], out)
    pseudo_label(folds, [audio], tmp_path / "folds.parquet")
    np.testing.assert_allclose(values(out).to_numpy(), values(tmp_path / "folds.parquet").to_numpy(), atol=1e-6)
    (teacher,) = metadata(out)["teachers"]
    assert teacher["path"] == str(run) and teacher["digest"] == hash_files(run_models(run)) and teacher["model"] == "cnn/test_efficientnet"


def test_a_birdnet_licence_in_a_teacher_or_its_teachers_propagates(models, audio, tmp_path):
    birdnet_based = save(tmp_path / "probe.safetensors", CODES_A, FEATURES_A, seed=3,
                         extra={"backbone": {"name": "BirdNET", "license": BIRDNET_LICENSE, "note": NON_COMMERCIAL_NOTE}})  # fmt: skip
    student = save(tmp_path / "student.safetensors", CODES_A, FEATURES_A, seed=4,
                   extra={"teachers": [{"path": "t.parquet", "teachers": [{"path": "probe", "license": BIRDNET_LICENSE}]}]})  # fmt: skip
    out = tmp_path / "labels.parquet"
    summary = pseudo_label([models["a"], birdnet_based], [audio], out)
    assert summary.note == NON_COMMERCIAL_NOTE
    meta = metadata(out)
    assert [(t["license"], t["note"]) for t in meta["teachers"]] == [(None, None), (BIRDNET_LICENSE, NON_COMMERCIAL_NOTE)]
    assert meta["note"] == NON_COMMERCIAL_NOTE
    pseudo_label([student], [audio], tmp_path / "student.parquet")
    meta = metadata(tmp_path / "student.parquet")
    assert meta["teachers"][0]["license"] == BIRDNET_LICENSE and meta["note"] == NON_COMMERCIAL_NOTE


def test_an_interrupted_run_resumes_to_exactly_the_uninterrupted_table(models, audio, tmp_path, monkeypatch):
    from birdcall.infer.scorer import TorchScorer

    teachers = [models["a"], models["b"]]
    reference = tmp_path / "reference.parquet"
    pseudo_label(teachers, [audio], reference, batch_size=1)

    calls = []
    real = TorchScorer.__call__

    def stopping(self, windows):  # teacher a scores 5 windows; teacher b is stopped at its 4th (r1.wav's 3 are done)
        calls.append(len(windows))
        if len(calls) == 5 + 4:
            raise KeyboardInterrupt
        return real(self, windows)

    monkeypatch.setattr(TorchScorer, "__call__", stopping)
    out = tmp_path / "labels.parquet"
    with pytest.raises(KeyboardInterrupt):
        pseudo_label(teachers, [audio], out, batch_size=1, workers=0)
    assert (state_dir(out) / "teacher0.parquet").is_file() and not out.exists()
    calls.clear()
    monkeypatch.setattr(TorchScorer, "__call__", lambda self, windows: (calls.append(len(windows)), real(self, windows))[1])
    summary = pseudo_label(teachers, [audio], out, batch_size=1)
    assert [s.resumed for s in summary.teachers] == [2, 1] and summary.resumed == 1
    assert sum(calls) == 2  # only sub/r2.wav's two windows, by teacher b
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(reference))
    assert not pd.read_parquet(out).duplicated(["file", "start"]).any()
    assert metadata(out) == metadata(reference)


def test_a_corrupt_file_is_left_out_and_listed_and_the_rest_is_labelled(models, audio, tmp_path):
    (audio / "bad.wav").write_text("this is not audio")
    out = tmp_path / "labels.parquet"
    summary = pseudo_label([models["a"], models["b"]], [audio], out)
    assert summary.line() == "3 files, 5 windows, 1 skipped"
    ((file, reason),) = summary.errors
    assert file == str(audio / "bad.wav") and reason.startswith("teachers 0, 1: ") and "not an audio file" in reason
    errors = pd.read_csv(state_dir(out) / "errors.csv")
    assert errors["file"].tolist() == [str(audio / "bad.wav")] and errors["reason"].tolist() == [reason]
    assert pd.read_parquet(out)["file"].unique().tolist() == ["r1.wav", "sub/r2.wav"]
    assert (metadata(out)["files"], metadata(out)["skipped"]) == (2, 1)


def test_teachers_whose_windows_differ_are_refused_before_any_work(models, audio, tmp_path):
    longer = save(tmp_path / "long.safetensors", CODES_A, FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=2.0), seed=5)
    out = tmp_path / "labels.parquet"
    with pytest.raises(ParameterError, match="different clip durations") as err:
        pseudo_label([models["a"], longer], [audio], out)
    assert str(models["a"]) in str(err.value) and str(longer) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ParameterError, match="not a whole number of samples at both 32000 Hz .* and 16000 Hz"):
        pseudo_label([models["a"], models["b"]], [audio], out, hop=0.10003)  # 3201 samples at 32 kHz, 1600 at 16 kHz
    with pytest.raises(ParameterError, match="method must be one of"):
        pseudo_label([models["a"]], [audio], out, method="median")
    with pytest.raises(ParameterError, match="power must be"):
        pseudo_label([models["a"]], [audio], out, method="power", power=0)
    with pytest.raises(ParameterError, match="teacher model not found"):
        pseudo_label([tmp_path / "nothing.safetensors"], [audio], out)
    assert not state_dir(out).exists() and not out.exists()


# ------------------------------------------------------------------------------------------------ reading


def rewrite(src: Path, dst: Path, *, frame=None, meta=None, edit=None) -> Path:
    """``src`` with its table (``edit(frame)`` or ``frame``) or metadata replaced, written to ``dst``."""
    table = pd.read_parquet(src) if frame is None else frame
    if edit is not None:
        edit(table)
    meta = metadata(src) if meta is None else meta
    arrow = pa.table({c: pa.array(table[c].tolist() if c == "file" else table[c].to_numpy()) for c in table.columns})  # NaN stays NaN
    pq.write_table(arrow.replace_schema_metadata({METADATA_KEY: json.dumps(meta)} if meta != {} else {}), dst)
    return dst


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def set_cell(column, row, value):
    def edit(frame):
        frame.loc[row, column] = value

    return edit


@pytest.mark.parametrize(
    "name, message",
    [
        ("/etc/passwd", "row 1: file name '/etc/passwd' is absolute"),
        ("../outside.wav", "row 1: file name '../outside.wav' has a '..' part"),
        ("sub/../../outside.wav", "row 1: file name 'sub/../../outside.wav' has a '..' part"),
        ("..\\outside.wav", "row 1: file name '..\\\\outside.wav' has a '..' part"),
        ("C:\\data\\x.wav", "is absolute"),
    ],
)
def test_reader_refuses_names_leading_out_of_the_root(shared, tmp_path, name, message):
    src, audio = shared
    bad = rewrite(src, tmp_path / "bad.parquet", edit=set_cell("file", 1, name))
    with pytest.raises(DataError) as err:
        read_pseudo_labels(bad, audio_root=audio)
    assert one_line(err).startswith(f"{bad}: ") and message in str(err.value)


def test_reader_refuses_a_symlink_escaping_the_root(shared, tmp_path):
    src, audio = shared
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes((audio / "r1.wav").read_bytes())
    os.symlink(audio / "r1.wav", root / "r1.wav")  # leads out of root too
    os.symlink(outside, root / "linked")  # a folder symlink out of the root
    (root / "sub" / "r2.wav").write_bytes((audio / "sub" / "r2.wav").read_bytes())

    def names(r1):
        def edit(frame):
            frame["file"] = [r1 if f == "r1.wav" else f for f in frame["file"]]

        return edit

    for r1, shown in (("r1.wav", "'r1.wav'"), ("linked/secret.wav", "'linked/secret.wav'")):
        bad = rewrite(src, tmp_path / "bad.parquet", edit=names(r1))
        with pytest.raises(DataError) as err:
            read_pseudo_labels(bad, audio_root=root)
        assert one_line(err).startswith(f"{bad}: row 0: file name {shown} leads out of the audio root {root}")
    os.unlink(root / "r1.wav")
    os.symlink(root / "sub" / "r2.wav", root / "r1.wav")  # a symlink that stays inside the root is fine
    read = read_pseudo_labels(src, audio_root=root)
    assert len(read) == 5 and read.files[0] == root / "r1.wav"


@pytest.mark.parametrize(
    "edit, message",
    [
        (set_cell("aa", 2, np.nan), "row 2, species 'aa': probability nan is not in [0, 1]"),
        (set_cell("bb", 0, 1.5), "row 0, species 'bb': probability 1.5 is not in [0, 1]"),
        (set_cell("cc", 4, -0.25), "row 4, species 'cc': probability -0.25 is not in [0, 1]"),
        (set_cell("end", 3, 0.0), "row 3: window start 0.0 s, end 0.0 s (needs 0 <= start < end, finite)"),
        (set_cell("start", 1, np.inf), "row 1: window start inf s"),
        (lambda f: f.pop("end"), "missing column(s) ['end']"),
        (lambda f: f.pop("bb"), "species columns do not match the metadata labels: no column for label(s) ['bb']"),
        (lambda f: f.insert(3, "zz", np.float32(0.5)), "column(s) ['zz'] not in the labels"),
        (set_cell("file", 4, "nope.wav"), "1 audio file(s) not found under the audio root"),
        (set_cell("start", 1, 0.0), "row 1: window ('r1.wav', start 0.0 s) repeats an earlier row"),
    ],
)
def test_reader_refuses_bad_values_and_columns(shared, tmp_path, edit, message):
    src, audio = shared
    bad = rewrite(src, tmp_path / "bad.parquet", edit=edit)
    with pytest.raises(DataError) as err:
        read_pseudo_labels(bad, audio_root=audio)
    assert one_line(err).startswith(f"{bad}: ") and message in str(err.value)


@pytest.mark.parametrize(
    "meta, message",
    [
        ({}, "no birdcall.pseudo_labels metadata"),
        ("[1, 2]", "metadata is not a JSON object"),
        ({"format": "birdcall.pseudo_labels/2"}, "unsupported pseudo-label format 'birdcall.pseudo_labels/2' (expected birdcall.pseudo_labels/1)"),
        ({"labels": {"codes": []}}, "malformed labels in the birdcall.pseudo_labels metadata"),
        ({"labels": {"codes": ["aa", "bb", "xx"]}}, "no column for label(s) ['xx']; column(s) ['cc'] not in the labels"),
    ],
)
def test_reader_refuses_wrong_metadata(shared, tmp_path, meta, message):
    src, audio = shared
    bad = tmp_path / "bad.parquet"
    if isinstance(meta, str):
        table = pq.read_table(src)
        pq.write_table(table.replace_schema_metadata({METADATA_KEY: meta}), bad)
    else:
        rewrite(src, bad, meta={**metadata(src), **meta} if meta else {})
    with pytest.raises(DataError) as err:
        read_pseudo_labels(bad, audio_root=audio)
    assert one_line(err).startswith(f"{bad}: ") and message in str(err.value)


def test_reader_refuses_what_is_not_a_labels_file(shared, tmp_path):
    src, audio = shared
    text = tmp_path / "labels.parquet"
    text.write_text("file,start,end\n")
    with pytest.raises(DataError, match="not a readable Parquet file") as err:
        read_pseudo_labels(text, audio_root=audio)
    assert one_line(err).startswith(f"{text}: ")
    with pytest.raises(DataError, match="file not found"):
        read_pseudo_labels(tmp_path / "none.parquet", audio_root=audio)
    with pytest.raises(ParameterError, match="the audio root is not a folder"):
        read_pseudo_labels(src, audio_root=tmp_path / "no-such-folder")
