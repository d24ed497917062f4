"""`birdcall export`: a model file to ONNX or OpenVINO IR, front end and sigmoid in the graph."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from ._common import out, user_errors


class ExportFormat(str, enum.Enum):
    """Formats ``birdcall export`` writes."""

    onnx = "onnx"
    openvino = "openvino"


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    model_path: Path = typer.Option(..., "--model", help="A birdcall model file (.safetensors)."),
    export_format: ExportFormat = typer.Option(..., "--format", help="onnx (a .onnx file) or openvino (.xml + .bin)."),
    out_path: Path = typer.Option(..., "--out", help="File to write: .onnx, or .xml for OpenVINO (its .bin goes beside it)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (13 or more; --stft op needs 17)."),
    stft: str = typer.Option(
        "auto", "--stft", help="STFT in the graph: fft (two matrix products, fastest; auto picks it when hop_length divides n_fft), op (ONNX STFT), dft (convolution)."
    ),
) -> None:
    """Export a model: raw waveform windows in, species probabilities out; checked against torch."""
    from ..export import export_onnx, export_openvino
    from ..models import load_model

    with user_errors():
        model, labels, _ = load_model(model_path)
        if ExportFormat(export_format) is ExportFormat.onnx:
            path = export_onnx(model, out_path, labels=labels, opset=opset, stft=stft)
        else:
            path = export_openvino(model, out_path, labels=labels, opset=opset, stft=stft)
    out.print(f"{model.config.arch} model, {len(labels)} species, {model.feature_config.clip_duration:g}-s windows -> {path}",
              highlight=False)
