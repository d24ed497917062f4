"""`birdcall predict` / `birdcall analyze` given a bad model file: one `error:` line naming the file, exit code 2,
and nothing written to the output (no run state that would lock the folder to the bad model)."""

from __future__ import annotations

import json

import onnx
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone

runner = CliRunner()
LABELS = LabelSet(("aaa", "bbb", "ccc"))
FEATURES = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
RATE = 32_000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``{name: path}``: a good checkpoint and its ONNX export, and broken copies of each."""
    from birdcall.export import export_onnx
    from birdcall.models import save_model
    from birdcall.testing.export import seeded_model

    folder = tmp_path_factory.mktemp("models")
    model = seeded_model("test_cnn", features=FEATURES, num_classes=len(LABELS))
    good = save_model(model, folder / "good.safetensors", labels=LABELS)
    with safe_open(str(good), framework="pt") as handle:
        header = json.loads(handle.metadata()["birdcall"])
    weights = load_file(str(good))
    out = {"good": good}
    for name, text in {
        "not_json": "{not json",
        "no_labels": json.dumps({k: v for k, v in header.items() if k != "labels"}),
        "extra_label": json.dumps({**header, "labels": {"codes": ["aaa", "bbb", "ccc", "ddd"]}}),
        "int_codes": json.dumps({**header, "labels": {"codes": [1, 2, 3]}}),
    }.items():
        out[name] = folder / f"{name}.safetensors"
        save_file(weights, str(out[name]), metadata={"birdcall": text})
    onnx_path = export_onnx(model, folder / "good.onnx", labels=LABELS)
    proto = onnx.load(str(onnx_path))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, "labels": json.dumps({"codes": ["aaa", "bbb", "ccc", "ddd"]})})
    out["extra_label_onnx"] = folder / "extra_label.onnx"
    onnx.save(proto, str(out["extra_label_onnx"]))
    out["garbage_onnx"] = folder / "garbage.onnx"
    out["garbage_onnx"].write_bytes(b"\x00\x01 not a protobuf")
    return out


@pytest.fixture
def audio(tmp_path):
    path = tmp_path / "rec.wav"
    write_audio(path, tone(frequency_hz=900.0, duration=2.0, sample_rate=RATE, amplitude=0.3), RATE)
    return path


CASES = [
    ("not_json", "birdcall metadata is not valid JSON"),
    ("no_labels", "birdcall metadata without 'labels'"),
    ("extra_label", "4 labels for a model with 3 outputs"),
    ("int_codes", "malformed 'labels' in birdcall metadata (ParameterError: LabelSet: codes must be non-empty strings, got 1 at position 0)"),
    ("extra_label_onnx", "4 labels in its metadata for a graph with 3 outputs ('clipwise')"),
    ("garbage_onnx", "ONNX Runtime cannot load it"),
]


def _one_error_line(result, path, cause: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}: ") and cause in lines[0], lines[0]


@pytest.mark.parametrize("case, cause", CASES, ids=[c for c, _ in CASES])
def test_predict_with_a_bad_model_file(models, audio, tmp_path, case, cause):
    out = tmp_path / "out"
    result = runner.invoke(app, ["predict", str(audio), "--model", str(models[case]), "--out", str(out / "submission.csv"), "--quiet"])
    _one_error_line(result, models[case], cause)
    assert not out.exists()  # no run state: the folder is not locked to the bad model


@pytest.mark.parametrize("case, cause", CASES, ids=[c for c, _ in CASES])
def test_analyze_with_a_bad_model_file(models, audio, tmp_path, case, cause):
    out = tmp_path / "detections"
    result = runner.invoke(app, ["analyze", str(audio), "--model", str(models[case]), "--out", str(out), "--quiet"])
    _one_error_line(result, models[case], cause)
    assert not out.exists()


@pytest.mark.integration
def test_a_good_model_still_runs(models, audio, tmp_path):
    for model in (models["good"], models["good"].with_suffix(".onnx")):
        out = tmp_path / model.suffix[1:] / "submission.csv"
        result = runner.invoke(app, ["predict", str(audio), "--model", str(model), "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        assert out.is_file()
