"""``birdcall export`` through typer's CliRunner."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import typer
from typer.testing import CliRunner

from birdcall.cli import export as export_cli
from birdcall.data import LabelSet
from birdcall.export import read_export_info
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import load_scorer
from birdcall.models import create_model, save_model

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("erirub", "turmer"))
runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    """A fresh app holding only ``export`` (independent of the other command modules)."""
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test root, so ``export`` stays a subcommand."""

    export_cli.register(app)
    return app


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("test_sed", num_classes=len(LABELS), features=SMALL).eval()
    return save_model(model, tmp_path_factory.mktemp("model") / "sed.safetensors", labels=LABELS)


def _one_line(text: str) -> str:
    return " ".join(text.split())  # rich may wrap long paths in the captured output


def test_onnx_export_writes_the_file_and_prints_its_path(app, checkpoint, tmp_path):
    out = tmp_path / "sub" / "sed.onnx"
    result = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _one_line(result.stdout) == f"sed model, 2 species, 1-s windows -> {out}"
    labels, features, info = read_export_info(out)
    assert labels == LABELS and features == SMALL and info["model"]["arch"] == "sed"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "STFT" not in ops and "MatMul" in ops  # the default STFT form: two matrix products
    assert max(o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")) == 17
    scores = load_scorer(out, backend="onnx", threads=1)(np.zeros((2, SMALL.clip_samples), np.float32))
    assert scores.shape == (2, 2)


def test_opset_and_stft_options_reach_the_exporter(app, checkpoint, tmp_path):
    out = tmp_path / "sed13.onnx"
    result = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "onnx", "--out", str(out), "--opset", "13"])
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(out))
    assert "STFT" not in {n.op_type for n in proto.graph.node}
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 13
    op = tmp_path / "sed_op.onnx"
    result = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "onnx", "--out", str(op), "--stft", "op"])
    assert result.exit_code == 0, result.output
    assert "STFT" in {n.op_type for n in onnx.load(str(op)).graph.node}
    bad = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "x.onnx"), "--opset", "13", "--stft", "op"])
    assert bad.exit_code != 0 and "opset >= 17" in bad.output


@pytest.mark.integration
def test_openvino_export_writes_xml_and_bin(app, checkpoint, tmp_path):
    pytest.importorskip("openvino")
    out = tmp_path / "sed.xml"
    result = runner.invoke(app, ["export", "--model", str(checkpoint), "--format", "openvino", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _one_line(result.stdout).endswith(f"-> {out}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sed.bin", "sed.xml"]
    assert read_export_info(out)[0] == LABELS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "onnx", "--out", "{tmp}/m.xml"], "m.xml: an ONNX export must be written to a .onnx file"),
        (["--format", "openvino", "--out", "{tmp}/m.onnx"], "m.onnx: an OpenVINO IR must be written to a .xml file"),
        (["--format", "onnx", "--out", "{tmp}/m.onnx", "--opset", "11"], "opset must be an integer in 13.."),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(app, checkpoint, tmp_path, args, message):
    result = runner.invoke(app, ["export", "--model", str(checkpoint), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2
    assert message in _one_line(result.output) and "error:" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_missing_model_and_unknown_format(app, tmp_path):
    result = runner.invoke(app, ["export", "--model", str(tmp_path / "none.safetensors"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "none.safetensors: file not found" in _one_line(result.output)
    result = runner.invoke(app, ["export", "--model", str(tmp_path / "none.safetensors"), "--format", "tflite", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "tflite" in result.output  # click's usage error for a bad choice


def test_the_birdcall_app_has_the_export_command():
    from birdcall.cli import app as birdcall_app

    result = runner.invoke(birdcall_app, ["export", "--help"])
    assert result.exit_code == 0 and "--opset" in result.output and "openvino" in result.output
