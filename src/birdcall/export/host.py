"""The exported graph without its STFT: what birdcall's own inference runs after a host FFT (no torch).

An exported birdcall graph takes raw waveform windows, so a deployment needs no Python feature code. Inside it,
the STFT is written as matrix products (no runtime has a fast FFT kernel) and costs about as much as an
efficientnet_b0 body. birdcall's ONNX Runtime and OpenVINO scorers therefore cut the graph at its
``power_spectrum`` tensor (`POWER_TENSOR`, recorded under `HOST_STFT_KEY` by the exporter), compute that tensor
with `birdcall.features.PowerSpectrum` (pocketfft) and run the rest of the graph (mel, dB, channels,
normalisation, network, sigmoid) from there. The exporters check that this path gives torch's probabilities to
`TOLERANCE`, as the whole graph must.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from ..features.config import FeatureConfig
from ..features.stft import PowerSpectrum
from .metadata import POWER_TENSOR

__all__ = ["FRONTENDS", "has_power_tensor", "host_power_spectrum", "onnx_body", "openvino_body", "resolve_frontend"]

FRONTENDS = ("auto", "graph", "host")


def resolve_frontend(frontend: str, info: dict[str, Any], path) -> str:
    """``"graph"`` or ``"host"``: where the STFT of the exported model at ``path`` is computed.

    ``"auto"`` is ``"host"`` when the file records its power-spectrum tensor (`HOST_STFT_KEY`), else ``"graph"``.

    Raises:
        ParameterError: an unknown value, or ``"host"`` for a file without the record (an older export).
    """
    if frontend not in FRONTENDS:
        raise ParameterError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
    has_host = "host_stft" in info
    if frontend == "host" and not has_host:
        raise ParameterError(f"{path}: frontend='host' needs an export that records its power spectrum; re-export it with this birdcall")
    if frontend == "auto":
        return "host" if has_host else "graph"
    return frontend


def host_power_spectrum(features: FeatureConfig, info: dict[str, Any]) -> PowerSpectrum:
    """The host STFT that feeds the cut graph of an export with ``info["host_stft"]``."""
    return PowerSpectrum(features, tuple(info["host_stft"]["bins"]))


def onnx_body(proto, output_names: list[str]):
    """The ONNX model from the ``power_spectrum`` tensor to ``output_names`` (an ``onnx.ModelProto``).

    Raises:
        ParameterError: the graph has no such tensor.
    """
    from onnx.utils import Extractor

    if not any(POWER_TENSOR in node.output for node in proto.graph.node):
        raise ParameterError(f"the ONNX graph has no {POWER_TENSOR!r} tensor")
    return Extractor(proto).extract_model([POWER_TENSOR], list(output_names))


def _power_port(model):
    return next((out for op in model.get_ordered_ops() for out in op.outputs() if POWER_TENSOR in out.get_names()), None)


def has_power_tensor(model) -> bool:
    """Whether an ``openvino.Model`` still has the tensor named `POWER_TENSOR` (its conversion may merge nodes)."""
    return _power_port(model) is not None


def _values_reach_a_result(node) -> bool:
    """Whether some path from ``node`` to a ``Result`` passes through no ``ShapeOf`` (which reads shapes only)."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current.get_type_name() == "Result":
            return True
        if current.get_type_name() == "ShapeOf" or id(current) in seen:
            continue
        seen.add(id(current))
        stack += [t.get_node() for out in current.outputs() for t in out.get_target_inputs()]
    return False


def openvino_body(ov, model):
    """The OpenVINO model with its ``power_spectrum`` tensor as the input (an ``openvino.Model``; not compiled).

    The producer of the tensor is disconnected and a new ``Parameter`` named `POWER_TENSOR` feeds its consumers;
    the waveform input and the STFT nodes then have no path to any result and are left out of the new model.

    Raises:
        ParameterError: the model has no such tensor.
    """
    from openvino import opset13

    port = _power_port(model)
    if port is None:
        raise ParameterError(f"the OpenVINO model has no {POWER_TENSOR!r} tensor")
    param = opset13.parameter(port.get_partial_shape(), port.get_element_type(), name=POWER_TENSOR)
    param.output(0).set_names({POWER_TENSOR})
    for target in list(port.get_target_inputs()):
        target.replace_source_output(param.output(0))
    port.set_names(set())
    # OpenVINO's shape optimisations may have the later graph read the batch size off the waveform input or a
    # tensor computed from it (``ShapeOf``: e.g. a recurrent layer's initial state, a reshape after PCEN). The
    # waveform is replaced by zeros of its shape, with the batch size of the power spectrum; no result may depend
    # on its values (checked here; values reach a result only through a path without a ShapeOf).
    for old in model.get_parameters():
        static = [d.get_length() for d in list(old.get_output_partial_shape(0))[1:]]
        batch = opset13.gather(opset13.shape_of(param), opset13.constant([0], dtype=np.int64), opset13.constant(0, dtype=np.int64))
        zeros = opset13.broadcast(opset13.constant(0.0, dtype=np.float32), opset13.concat([batch, opset13.constant(static, dtype=np.int64)], axis=0))
        for target in list(old.output(0).get_target_inputs()):
            target.replace_source_output(zeros.output(0))
        if _values_reach_a_result(zeros):
            raise ParameterError(f"the OpenVINO model cannot be cut at its {POWER_TENSOR!r} tensor: a result reads the waveform beyond its STFT")
    return ov.Model(model.get_results(), [param], f"{model.get_friendly_name()}-body")
