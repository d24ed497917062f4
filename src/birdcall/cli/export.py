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
    int8: bool = typer.Option(
        False, "--int8", help="OpenVINO only: quantise the network to int8 (NNCF, extra 'int8'; the front end stays float), checked against float32."
    ),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="With --int8: a data set folder (train_metadata.csv; its labels also check cmAP), an audio folder or file."
    ),
    calibration_windows: int = typer.Option(300, "--calibration-windows", help="With --int8: windows to calibrate on (a quarter as many more are held out for the check)."),
    int8_tolerance: float = typer.Option(0.05, "--int8-tolerance", help="With --int8: max absolute probability difference from float32 on the held-out windows."),
    cmap_tolerance: float = typer.Option(0.01, "--cmap-tolerance", help="With --int8 and a labelled data set: max change of cmAP on its clips."),
) -> None:
    """Export a model: raw waveform windows in, species probabilities out; checked against torch."""
    import tempfile

    from ..errors import ParameterError
    from ..export import export_onnx, export_openvino
    from ..models import load_model

    with user_errors():
        if int8:
            from ..export.quantize import import_nncf

            if ExportFormat(export_format) is not ExportFormat.openvino:
                raise ParameterError("--int8 needs --format openvino")
            if calibration is None:
                raise ParameterError("--int8 needs --calibration DATA_OR_AUDIO_FOLDER")
            import_nncf()  # before the float32 export: a missing extra fails at once
        model, labels, _ = load_model(model_path)
        if ExportFormat(export_format) is ExportFormat.onnx:
            path = export_onnx(model, out_path, labels=labels, opset=opset, stft=stft)
        elif int8:
            from ..export.quantize import quantize_openvino

            with tempfile.TemporaryDirectory(prefix="birdcall-int8-", ignore_cleanup_errors=True) as tmp:
                f32 = export_openvino(model, Path(tmp) / f"{out_path.stem}-f32.xml", labels=labels, opset=opset, stft=stft)
                path = quantize_openvino(f32, out_path, calibration=calibration, num_windows=calibration_windows, tolerance=int8_tolerance,
                                         cmap_tolerance=cmap_tolerance)  # fmt: skip
        else:
            path = export_openvino(model, out_path, labels=labels, opset=opset, stft=stft)
    out.print(f"{model.config.arch} model, {len(labels)} species, {model.feature_config.clip_duration:g}-s windows -> {path}",
              highlight=False)
