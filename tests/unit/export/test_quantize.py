"""int8 OpenVINO IRs (`birdcall.export.quantize`, `birdcall export --int8`): NNCF on a tiny test_cnn, checked
against the float32 IR; the scorer and `birdcall analyze` run the int8 IR as they run an f32 one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.cli import app
from birdcall.data import LabelSet
from birdcall.errors import ExportError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.testing.signals import call_in_noise

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("sp_a", "sp_b", "sp_c"))
runner = CliRunner()


def _write_dataset(root: Path) -> Path:
    """A BirdCLEF-layout data set of 6 clips of 4 s (a call of each species' band in pink noise)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(6):
        code = LABELS.codes[i % 3]
        y, _ = call_in_noise(rng=rng, duration=4.0, call_start=1.0 + 0.3 * i, low_hz=1500.0 + 1500 * (i % 3), high_hz=2500.0 + 1500 * (i % 3),
                             sample_rate=SMALL.sample_rate)  # fmt: skip
        write_audio(root / "train_audio" / code / f"{code}_{i}.flac", y, SMALL.sample_rate)
        rows.append({"filename": f"{code}/{code}_{i}.flac", "labels": code})
    pd.DataFrame(rows).to_csv(root / "train_metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def f32_ir(tmp_path_factory):
    pytest.importorskip("openvino")
    from birdcall.export import export_openvino
    from birdcall.models import save_model
    from birdcall.testing.export import seeded_model

    folder = tmp_path_factory.mktemp("int8")
    model = seeded_model("test_cnn", features=SMALL, num_classes=len(LABELS), seed=0)
    checkpoint = save_model(model, folder / "tiny.safetensors", labels=LABELS)
    return checkpoint, export_openvino(model, folder / "tiny-f32.xml", labels=LABELS), _write_dataset(folder / "data")


@pytest.fixture(scope="module")
def int8_ir(f32_ir, tmp_path_factory):
    pytest.importorskip("nncf")
    from birdcall.export.quantize import quantize_openvino

    _, xml, data = f32_ir
    return quantize_openvino(xml, tmp_path_factory.mktemp("out") / "tiny-int8.xml", calibration=data, num_windows=16)


@pytest.mark.integration
def test_int8_scores_are_within_the_tolerance_of_float32_and_the_metadata_says_int8(f32_ir, int8_ir):
    from birdcall.export import read_export_info
    from birdcall.export.quantize import TOLERANCE_INT8
    from birdcall.infer.scorer import load_scorer

    _, f32, _ = f32_ir
    labels, features, info = read_export_info(int8_ir)
    assert labels == LABELS and features == SMALL and "host_stft" in info
    q = info["quantization"]
    assert q["precision"] == "int8" and q["calibration"]["windows"] == 16 and q["calibration"]["held_out"] == 4
    assert len(q["calibration"]["digest"]) == 64 and q["max_abs_difference"] <= q["tolerance"] == TOLERANCE_INT8
    assert abs(q["cmap_int8"] - q["cmap_f32"]) <= q["cmap_tolerance"] == 0.01  # a labelled data set: cmAP checked too
    assert "quantization" not in read_export_info(f32)[2]
    text = int8_ir.read_text()
    assert 'type="FakeQuantize"' in text and 'element_type="i8"' in text  # the network really is int8
    import openvino as ov

    # the front end stays float: no quantiser feeds a front-end node (the one on its output feeds the first conv)
    fq = [op for op in ov.Core().read_model(str(int8_ir)).get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
    readers = {t.get_node().get_friendly_name() for op in fq for t in op.output(0).get_target_inputs()}
    assert fq and not [name for name in readers if "/frontend/" in name]
    windows = np.random.default_rng(5).standard_normal((6, SMALL.clip_samples)).astype(np.float32) * 0.1
    for frontend in ("host", "graph"):
        expected = load_scorer(f32, backend="openvino", frontend=frontend)(windows)
        scorer = load_scorer(int8_ir, backend="openvino", frontend=frontend)  # loaded exactly like an f32 IR
        assert scorer.frontend == frontend
        np.testing.assert_allclose(scorer(windows), expected, rtol=0, atol=TOLERANCE_INT8)


@pytest.mark.integration
def test_a_too_strict_tolerance_is_refused_in_one_line_and_nothing_is_written(f32_ir, tmp_path):
    pytest.importorskip("nncf")
    from birdcall.export.quantize import quantize_openvino

    _, xml, data = f32_ir
    dest = tmp_path / "strict.xml"
    with pytest.raises(ExportError, match=r"int8 and float32 probabilities differ by [0-9.e+-]+ on 4 held-out windows .*tolerance 1e-09\); not written") as err:
        quantize_openvino(xml, dest, calibration=data, num_windows=16, tolerance=1e-9)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_export_int8_cli_and_analyze_run_the_int8_model(f32_ir, tmp_path):
    pytest.importorskip("nncf")
    checkpoint, _, data = f32_ir
    audio = data / "train_audio"  # an audio folder (no labels) this time
    out = tmp_path / "tiny-int8.xml"
    result = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "openvino", "--out", str(out), "--int8",
                                 "--calibration", str(audio), "--calibration-windows", "12"])  # fmt: skip
    assert result.exit_code == 0, result.output
    from birdcall.export import read_export_info

    q = read_export_info(out)[2]["quantization"]
    assert q["calibration"]["source"] == "train_audio" and "cmap_int8" not in q
    strict = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "openvino", "--out", str(tmp_path / "strict.xml"), "--int8",
                                 "--calibration", str(audio), "--calibration-windows", "12", "--int8-tolerance", "0"])  # fmt: skip
    errors = [line for line in strict.output.splitlines() if line.startswith("error:")]  # (NNCF's progress bars go to stdout)
    assert strict.exit_code == 2 and len(errors) == 1 and "int8 and float32 probabilities differ by" in errors[0] and errors[0].endswith("not written")
    result = runner.invoke(app, ["analyze", "--quiet", "--model", str(out), "--out", str(tmp_path / "run"), "--min-confidence", "0", str(audio / "sp_a")])
    assert result.exit_code == 0, result.output
    detections = pd.read_csv(tmp_path / "run" / "detections.csv")
    assert len(detections) == 2 * 4 * len(LABELS)  # 2 files of 4 one-second windows, every species at threshold 0


def test_without_nncf_the_option_names_the_extra_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf -> ImportError
    from birdcall.export.quantize import import_nncf

    with pytest.raises(ParameterError, match=r"pip install 'birdcall\[int8\]'"):
        import_nncf()
    result = runner.invoke(app, ["export", "--model", str(tmp_path / "m.safetensors"), "--format", "openvino", "--out", str(tmp_path / "m.xml"),
                                 "--int8", "--calibration", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "int8 export needs NNCF" in result.output and "birdcall[int8]" in result.output


def test_int8_needs_openvino_and_a_calibration_source(tmp_path):
    for extra, message in ((["--format", "onnx", "--calibration", str(tmp_path)], "--int8 needs --format openvino"),
                           (["--format", "openvino"], "--int8 needs --calibration")):  # fmt: skip
        result = runner.invoke(app, ["export", "--model", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "m.xml"), "--int8", *extra])
        assert result.exit_code == 2 and message in result.output


@pytest.mark.integration
def test_calibration_windows_are_read_with_a_held_out_fifth_and_a_stable_digest(f32_ir):
    from birdcall.export.quantize import calibration_set

    _, _, data = f32_ir
    a = calibration_set(data, SMALL, num_windows=16, labels=LABELS)
    b = calibration_set(data, SMALL, num_windows=16, labels=LABELS)
    assert a.windows.shape == (20, SMALL.clip_samples) and a.windows.dtype == np.float32
    assert a.held_out.sum() == 4 and a.digest == b.digest
    # ceil(20 / 6) = 4 windows a file: the 4 windows of each of the first 5 clips; the labels of those 5
    assert a.truth.shape == (5, 3) and a.truth.sum() == 5 and np.bincount(a.clip).tolist() == [4, 4, 4, 4, 4]
    assert calibration_set(data, SMALL, num_windows=8).digest != a.digest
    with pytest.raises(ParameterError, match="must be a data set folder"):
        calibration_set(data / "train_metadata.csv", SMALL, num_windows=8)
