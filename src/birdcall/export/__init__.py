"""Export of birdcall models to ONNX and OpenVINO IR: raw waveform in, probabilities out, front end included.

The exported files describe themselves (labels, feature config, model config), so
:func:`birdcall.infer.load_scorer` runs them without the ``.safetensors`` file. ``openvino`` is optional and
imported only by `export_openvino` and when reading an ``.xml``.
"""

from .onnx import FORMAT as FORMAT
from .onnx import STFT_METHODS as STFT_METHODS
from .onnx import export_onnx as export_onnx
from .onnx import read_export_info as read_export_info
from .onnx import resolve_stft_method as resolve_stft_method
from .openvino import export_openvino as export_openvino
