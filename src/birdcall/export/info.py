"""Read an exported birdcall model's description (labels, front end, model) from its file, without torch.

`read_export_info` takes any exported file (``.onnx``, or an OpenVINO IR ``.xml``); `read_ir` reads an IR and
its ``rt_info``. The metadata layout itself is `birdcall.export.metadata`; ``onnx`` and the optional
``openvino`` are imported only when a file of their kind is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.labels import LabelSet
from ..errors import CheckpointError, ParameterError
from ..features.config import FeatureConfig
from ..types import Pathlike
from .metadata import FORMAT_KEY, HOST_STFT_KEY, QUANTIZATION_KEY, check_num_outputs, onnx_num_outputs, openvino_num_outputs, parse_metadata

__all__ = ["RT_KEYS", "RT_SECTION", "import_openvino", "read_export_info", "read_ir"]

RT_SECTION = "birdcall"  # the OpenVINO rt_info section holding the metadata
# rt_info key -> ONNX metadata key; "host_stft" (older exports lack it) and "quantization" (int8 IRs only) are
# optional, the others are required
RT_KEYS = {"format": FORMAT_KEY, "labels": "labels", "features": "features", "model": "model", "host_stft": HOST_STFT_KEY,
           "quantization": QUANTIZATION_KEY}  # fmt: skip


def import_openvino():
    """The ``openvino`` module, or a `ParameterError` saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise ParameterError("OpenVINO is not installed: pip install 'birdcall[openvino]'") from None
    return openvino


def _metadata_of(model, path: Pathlike) -> tuple[LabelSet, FeatureConfig, dict[str, Any]]:
    props = {}
    for rt_key, onnx_key in RT_KEYS.items():
        if model.has_rt_info([RT_SECTION, rt_key]):
            props[onnx_key] = model.get_rt_info([RT_SECTION, rt_key]).astype(str)
    return parse_metadata(props, path=path)


def read_ir(path: Pathlike, core=None):
    """Read an OpenVINO IR written by :func:`birdcall.export.export_openvino` (not compiled).

    Args:
        path: the ``.xml`` file; its ``.bin`` must be beside it.
        core: an ``openvino.Core`` to read with (a new one by default).

    Returns:
        ``(ov_model, labels, features, info)``.

    Raises:
        CheckpointError: missing or unreadable IR, or an IR without birdcall metadata.
    """
    ov = import_openvino()
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "file not found")
    try:
        model = (core or ov.Core()).read_model(str(p))
    except RuntimeError as err:
        raise CheckpointError(p, f"not a readable OpenVINO IR ({' '.join(str(err).split())[:300]})") from None
    return (model, *_metadata_of(model, p))


def read_export_info(path: Pathlike) -> tuple[LabelSet, FeatureConfig, dict[str, Any]]:
    """Labels, front end and description of an exported model, without running it.

    Args:
        path: a ``.onnx`` file or an OpenVINO IR ``.xml`` (its ``.bin`` beside it) written by birdcall.

    Returns:
        ``(labels, features, info)``; see :func:`birdcall.export.metadata.parse_metadata`.

    Raises:
        CheckpointError: missing or unreadable file, another suffix, a model without birdcall metadata, or a
            graph whose static number of outputs differs from its number of labels.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(p, "file not found")
    if p.suffix == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(p), load_external_data=False)
        except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and onnx's errors share no useful base
            raise CheckpointError(p, f"not an ONNX model ({type(err).__name__}: {str(err)[:300]})") from None
        labels, features, info = parse_metadata({prop.key: prop.value for prop in proto.metadata_props}, path=p)
        check_num_outputs(labels, onnx_num_outputs(proto.graph, path=p), path=p)
        return labels, features, info
    if p.suffix == ".xml":
        model, labels, features, info = read_ir(p)
        check_num_outputs(labels, openvino_num_outputs(model, path=p), path=p)
        return labels, features, info
    raise CheckpointError(p, "not an exported birdcall model (expected .onnx or an OpenVINO .xml)")
