"""What an exported birdcall model carries, without torch: the leaf of `birdcall.export` (it imports no sibling).

Exported files (ONNX, OpenVINO IR) describe themselves: ``birdcall.format`` (`FORMAT`) and the ``labels``,
``features`` and ``model`` descriptions as JSON. Parsing that map, and the seeded windows the exporters check parity
on, need only numpy, so the ONNX Runtime and OpenVINO scorers run without importing torch (a deployment saves its
~1 s import and ~300 MB). `birdcall.export.info` reads the map from a file; `birdcall.export.onnx` writes files and
needs torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import is_int
from ..config import from_dict
from ..data.labels import LabelSet
from ..errors import CheckpointError
from ..features.config import FeatureConfig
from ..types import Pathlike

__all__ = [
    "FORMAT", "FORMAT_KEY", "HOST_STFT_KEY", "INPUT_NAME", "OUTPUT_NAME", "POWER_TENSOR", "QUANTIZATION_KEY", "TOLERANCE", "check_num_outputs",
    "check_windows", "max_difference", "onnx_num_outputs", "openvino_num_outputs", "parity_windows", "parse_metadata",
]  # fmt: skip

FORMAT = "birdcall.onnx/1"  # version of the exported-graph contract: input, outputs and metadata keys
INPUT_NAME = "waveform"
OUTPUT_NAME = "clipwise"  # (batch, num_species) probabilities; its last dimension is static in birdcall exports
TOLERANCE = 1e-4  # max absolute difference of probabilities accepted between torch and the exported graph
FORMAT_KEY = "birdcall.format"
_JSON_KEYS = ("labels", "features", "model")
# Optional (newer exports carry it): the graph's power spectrogram, a tensor that birdcall's own inference
# feeds from a host FFT instead of the waveform (`birdcall.export.host`). Its value is JSON
# ``{"tensor": POWER_TENSOR, "bins": [lo, hi]}``: the tensor is ``(batch, n_frames, hi - lo)``, the power of FFT
# bins ``lo..hi-1`` as `birdcall.features.PowerSpectrum` computes it. Files without it run the whole graph.
HOST_STFT_KEY = "birdcall.host_stft"
POWER_TENSOR = "power_spectrum"
# Optional (int8 exports carry it, `birdcall.export.quantize`): JSON ``{"precision": "int8", "calibration":
# {"source", "digest", "windows", "held_out"}, "max_abs_difference", "tolerance", ...}``; files without it are float32.
QUANTIZATION_KEY = "birdcall.quantization"


def parse_metadata(props: Mapping[str, str], *, path: Pathlike) -> tuple[LabelSet, FeatureConfig, dict[str, Any]]:
    """Read `export_metadata`'s map back (from ONNX ``metadata_props`` or OpenVINO ``rt_info``).

    Returns:
        ``(labels, features, info)`` where ``info`` holds ``format`` and the ``labels``, ``features`` and
        ``model`` dicts (the layout of :func:`birdcall.models.read_model_info`), and ``host_stft``
        (``{"tensor", "bins"}``, see `HOST_STFT_KEY`) and ``quantization`` (see `QUANTIZATION_KEY`) when the
        file has them.

    Raises:
        CheckpointError: no birdcall metadata, another format version, or malformed values.
    """
    fmt = props.get(FORMAT_KEY)
    if fmt is None:
        raise CheckpointError(path, "exported model without birdcall metadata (write it with `birdcall export`)")
    if fmt != FORMAT:
        raise CheckpointError(path, f"unsupported export format {fmt!r} (expected {FORMAT})")
    try:
        info: dict[str, Any] = {"format": fmt, **{key: json.loads(props[key]) for key in _JSON_KEYS}}
        labels = LabelSet.from_dict(info["labels"])
        features = from_dict(FeatureConfig, info["features"])
        if HOST_STFT_KEY in props:
            info["host_stft"] = _parse_host_stft(json.loads(props[HOST_STFT_KEY]), features)
        if QUANTIZATION_KEY in props:
            info["quantization"] = json.loads(props[QUANTIZATION_KEY])
            if not isinstance(info["quantization"], dict) or not isinstance(info["quantization"].get("precision"), str):
                raise ValueError(f"{QUANTIZATION_KEY} must be a JSON object with a 'precision', got {props[QUANTIZATION_KEY]!r}")
    except (KeyError, TypeError, ValueError) as err:  # ValueError covers JSON errors and ParameterError
        raise CheckpointError(path, f"malformed birdcall metadata ({type(err).__name__}: {err})") from None
    return labels, features, info


def check_num_outputs(labels: LabelSet, num_outputs: Any, *, path: Pathlike) -> None:
    """Refuse an exported model whose number of labels differs from its graph's number of outputs.

    Args:
        labels: the labels its metadata carries.
        num_outputs: the last dimension of the graph's `OUTPUT_NAME` output: a positive int when static;
            anything else (None, a symbolic name, -1) means dynamic and is not checked.
        path: the model file, named in the error.

    Raises:
        CheckpointError: the counts differ (found when the model is opened, before anything is scored).
    """
    if is_int(num_outputs) and num_outputs > 0 and num_outputs != len(labels):
        raise CheckpointError(path, f"{len(labels)} labels in its metadata for a graph with {int(num_outputs)} outputs ({OUTPUT_NAME!r})")


def onnx_num_outputs(graph, *, path: Pathlike) -> int | None:
    """The static last dimension of the `OUTPUT_NAME` output of an ONNX ``GraphProto``; None when dynamic.

    Raises:
        CheckpointError: the graph has no `OUTPUT_NAME` output.
    """
    output = next((o for o in graph.output if o.name == OUTPUT_NAME), None)
    if output is None:
        raise CheckpointError(path, f"exported graph without a {OUTPUT_NAME!r} output")
    dims = output.type.tensor_type.shape.dim
    return dims[-1].dim_value if dims and dims[-1].HasField("dim_value") else None


def openvino_num_outputs(model, *, path: Pathlike) -> int | None:
    """The static last dimension of the `OUTPUT_NAME` output of an OpenVINO model (read or compiled); None when dynamic.

    Raises:
        CheckpointError: the model has no `OUTPUT_NAME` output.
    """
    try:
        shape = model.output(OUTPUT_NAME).get_partial_shape()
    except RuntimeError:
        raise CheckpointError(path, f"exported graph without a {OUTPUT_NAME!r} output") from None
    if not shape.rank.is_static or len(shape) == 0 or not shape[len(shape) - 1].is_static:
        return None
    return shape[len(shape) - 1].get_length()


def _parse_host_stft(value: Any, features: FeatureConfig) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"tensor", "bins"} or not isinstance(value["tensor"], str):
        raise ValueError(f"{HOST_STFT_KEY} must be {{'tensor': name, 'bins': [lo, hi]}}, got {value!r}")
    bins = value["bins"]
    if not (isinstance(bins, list) and len(bins) == 2 and all(is_int(b) for b in bins) and 0 <= bins[0] < bins[1] <= features.n_fft // 2 + 1):
        raise ValueError(f"{HOST_STFT_KEY}: bins must be [lo, hi] with 0 <= lo < hi <= n_fft // 2 + 1, got {bins!r}")
    return {"tensor": value["tensor"], "bins": list(bins)}


def check_windows(features: FeatureConfig, batch_size: int = 4) -> np.ndarray:
    """Seeded ``(batch_size, clip_samples)`` float32 test windows: silence, a 1 kHz tone in noise, then noise.

    Used to compare an exported graph with torch; silence is included because zero-padded windows are common.
    """
    n = features.clip_samples
    rng = np.random.default_rng(17)
    t = np.arange(n) / features.sample_rate
    windows = [np.zeros(n), 0.3 * np.sin(2 * np.pi * 1000.0 * t) + 0.01 * rng.standard_normal(n)]
    windows += [0.05 * (i + 1) * rng.standard_normal(n) for i in range(max(0, batch_size - 2))]
    return np.stack(windows[:batch_size]).astype(np.float32)


def parity_windows(features: FeatureConfig, arch: str | None) -> np.ndarray:
    """The `check_windows` an export of a model of family ``arch`` is compared on.

    A ``birdnet_finetune`` export leaves out the silent window: on digital silence BirdNET's spectrogram is
    float32 rounding of ~0 raised to the power 0.23 (its ``(m*m)**0.23``), so any two implementations (LiteRT,
    torch's FFT, the exported DFT by matrix product, each runtime's accumulation order) give probabilities up
    to 1e-2 apart there; on sound they agree to ~1e-5 (tests/unit/export/test_finetune_export.py).
    """
    windows = check_windows(features)
    return windows[1:] if arch == "birdnet_finetune" else windows


def max_difference(expected: list[np.ndarray], actual: list[np.ndarray], names: list[str]) -> tuple[float, str]:
    """Largest absolute difference over paired outputs (NaN anywhere counts as infinite) and its output name."""
    worst, where = 0.0, names[0]
    for name, a, b in zip(names, expected, actual):
        if a.shape != b.shape:
            return float("inf"), f"{name} (shape {b.shape}, expected {a.shape})"
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d = float(np.inf) if not np.all(np.isfinite(diff)) else float(diff.max(initial=0.0))
        if d > worst:
            worst, where = d, name
    return worst, where
