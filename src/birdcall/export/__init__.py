"""Export of birdcall models to ONNX and OpenVINO IR: raw waveform in, probabilities out, front end included.

The exported files describe themselves (labels, feature config, model config), so
:func:`birdcall.infer.load_scorer` runs them without the ``.safetensors`` file. Reading that description
(`read_export_info`) needs no torch; the exporters (`export_onnx`, and `export_openvino` of a torch model) do,
and are imported on first use. ``openvino`` is optional and imported only by `export_openvino` and when reading
an ``.xml``. `quantize_openvino` writes an int8 IR of a float32 one (optional ``nncf``).
"""

from .._lazy import install
from .info import read_export_info as read_export_info
from .metadata import FORMAT as FORMAT

_LAZY = {
    "STFT_METHODS": "onnx",
    "export_onnx": "onnx",
    "resolve_stft_method": "onnx",
    "export_openvino": "openvino",
    "quantize_openvino": "quantize",
}
__all__ = ["FORMAT", "read_export_info"] + list(_LAZY)
install(__name__, _LAZY)
