"""OpenVINO IR export: the birdcall ONNX graph converted with ``openvino.convert_model``, metadata included.

The IR (``.xml`` + ``.bin`` beside it) keeps the ONNX graph's contract (input ``waveform``, outputs
``clipwise`` and, for SED/CRNN, ``framewise`` probabilities) and carries the same metadata in its ``rt_info``
under ``birdcall``: ``format``, ``labels``, ``features`` and ``model`` (JSON text, as in the ONNX
``metadata_props``), so ``read_export_info("model.xml")`` needs no other file. Weights stay float32
(``compress_to_fp16=False``).

``openvino`` is an optional dependency (``pip install birdcall[openvino]``); it is imported only when used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data.labels import LabelSet
from ..errors import ExportError, ParameterError
from ..features.config import FeatureConfig
from ..types import Pathlike
from .host import has_power_tensor
from .info import RT_KEYS, RT_SECTION, import_openvino, read_export_info
from .metadata import INPUT_NAME, POWER_TENSOR, TOLERANCE, max_difference, parity_windows

__all__ = ["export_openvino", "save_ir_atomically"]


def export_openvino(
    source,
    path: Pathlike,
    *,
    labels: LabelSet | None = None,
    opset: int = 17,
    stft: str = "auto",
    check: bool = True,
) -> Path:
    """Write an OpenVINO IR of a birdcall model or of a birdcall ONNX export.

    Args:
        source: a ``.onnx`` file written by :func:`birdcall.export.export_onnx`, or a birdcall torch model
            (exported to a temporary ONNX file first, with ``opset`` and ``check``).
        path: the ``.xml`` to write; the weights go to the ``.bin`` of the same name. Both are written
            atomically (the ``.bin`` first), and only if the check passes.
        labels: the model's species; required with a torch model, not allowed with an ONNX file (its own
            labels are used).
        opset: ONNX opset of the intermediate export (torch model only).
        stft: STFT form of the intermediate export (torch model only), as in :func:`export_onnx`.
        check: compile the IR on CPU in float32 and compare its probabilities with ONNX Runtime on the source
            graph (`check_windows`).

    Returns:
        ``Path(path)``.

    Raises:
        ParameterError: OpenVINO missing, a bad path, or ``labels`` wrongly given or missing.
        CheckpointError: an ONNX file that is missing or has no birdcall metadata.
        ExportError: conversion failed or OpenVINO differs from ONNX Runtime by more than `TOLERANCE`.
    """
    ov = import_openvino()
    dest = Path(path)
    if dest.suffix != ".xml":
        raise ParameterError(f"{dest}: an OpenVINO IR must be written to a .xml file (its .bin goes beside it)")
    if isinstance(source, (str, os.PathLike)):
        if labels is not None:
            raise ParameterError("export_openvino: labels come from the ONNX file; do not pass labels with one")
        return _convert(ov, Path(source), dest, check)
    if labels is None:
        raise ParameterError("export_openvino: labels are required to export a torch model")
    from .onnx import export_onnx  # torch: only to export a torch model

    with tempfile.TemporaryDirectory(prefix="birdcall-export-", ignore_cleanup_errors=True) as tmp:
        onnx_path = export_onnx(source, Path(tmp) / f"{dest.stem}.onnx", labels=labels, opset=opset, stft=stft, check=check)
        return _convert(ov, onnx_path, dest, check)


def _convert(ov, onnx_path: Path, dest: Path, check: bool) -> Path:
    if onnx_path.suffix != ".onnx":
        raise ParameterError(f"{onnx_path}: export_openvino converts a birdcall .onnx file or a torch model")
    _, features, info = read_export_info(onnx_path)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as err:  # OpenVINO's conversion errors have no common base class
        raise ExportError(f"{dest}: OpenVINO conversion failed ({type(err).__name__}: {' '.join(str(err).split())[:300]})") from err
    if "host_stft" in info and not has_power_tensor(model):
        # OpenVINO's conversion merged the tensor into another node: this IR runs its whole graph (still correct)
        warnings.warn(f"{dest}: OpenVINO's conversion lost the {POWER_TENSOR!r} tensor; the IR will compute its STFT in the graph (slower)", stacklevel=3)
        info = {k: v for k, v in info.items() if k != "host_stft"}
    for rt_key in RT_KEYS:
        if rt_key in info:
            value = info["format"] if rt_key == "format" else json.dumps(info[rt_key])
            model.set_rt_info(value, [RT_SECTION, rt_key])
    if check:
        _compare_with_onnxruntime(ov, model, onnx_path, dest, features, info)
    save_ir_atomically(ov, model, dest)
    return dest


def _compare_with_onnxruntime(ov, model, onnx_path: Path, dest: Path, features: FeatureConfig, info: dict[str, Any]) -> None:
    """Raise `ExportError` unless OpenVINO (f32) gives ONNX Runtime's outputs on the source graph, both with the
    whole IR and with the IR cut at its power spectrum and fed by the host STFT (`birdcall.export.host`)."""
    import onnxruntime as ort

    from .host import host_power_spectrum, openvino_body

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    windows = parity_windows(features, info.get("model", {}).get("arch"))
    expected = session.run(names, {INPUT_NAME: windows})
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    result = compiled.create_infer_request().infer({0: windows})
    actual = [np.array(result[compiled.output(name)]) for name in names]
    diff, where = max_difference(expected, actual, names)
    if not diff <= TOLERANCE:
        raise ExportError(f"{dest}: OpenVINO (f32) and ONNX Runtime differ by {diff:.2e} on {where} (tolerance {TOLERANCE:g})")
    if "host_stft" not in info:
        return
    body = ov.Core().compile_model(openvino_body(ov, model.clone()), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    result = body.create_infer_request().infer({0: host_power_spectrum(features, info)(windows)})
    actual = [np.array(result[body.output(name)]) for name in names]
    diff, where = max_difference(expected, actual, names)
    if not diff <= TOLERANCE:
        raise ExportError(f"{dest}: OpenVINO (f32) fed by the host STFT and ONNX Runtime differ by {diff:.2e} on {where} (tolerance {TOLERANCE:g})")


def save_ir_atomically(ov, model, dest: Path) -> None:
    """``save_model`` into a temporary folder beside ``dest``, then move the ``.bin`` and then the ``.xml`` in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.stem}.", suffix=".tmp", dir=dest.parent))
    try:
        ov.save_model(model, str(tmp / dest.name), compress_to_fp16=False)
        for name in (dest.with_suffix(".bin").name, dest.name):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp / name, dest.parent / name)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
