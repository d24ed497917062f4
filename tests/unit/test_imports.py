"""Import hygiene: the ONNX Runtime / OpenVINO inference path runs without importing torch (checked in a fresh
interpreter), and the lazy package attributes resolve to the same objects as their modules."""

import subprocess
import sys

import numpy as np
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.integration
def test_exported_model_inference_never_imports_torch(backend, tmp_path):
    if backend == "openvino":
        pytest.importorskip("openvino")
    import torch

    from birdcall.export import export_onnx
    from birdcall.models import create_model

    torch.manual_seed(0)
    model = create_model("test_cnn", num_classes=2, features=SMALL).eval()
    onnx_path = export_onnx(model, tmp_path / "m.onnx", labels=LabelSet(("aaa", "bbb")))
    audio = tmp_path / "rec.wav"
    write_audio(audio, tone(frequency_hz=1000.0, duration=3.0, sample_rate=SMALL.sample_rate, amplitude=0.3), SMALL.sample_rate)
    code = f"""
import sys
from birdcall.infer import EngineOptions, run_inference
summary = run_inference({str(onnx_path)!r}, [{str(audio)!r}], {str(tmp_path / "out")!r}, engine=EngineOptions(backend={backend!r}, threads=1))
print(summary.line())
print("torch imported:", "torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 files, 3 windows, 0 skipped" in result.stdout
    assert "torch imported: False" in result.stdout
    assert (tmp_path / "out" / "detections.csv").is_file()


def test_lazy_names_are_the_functions_not_their_submodules():
    import birdcall.export.onnx  # noqa: F401 - imports features.normalize/.mel as submodules first
    from birdcall import features
    from birdcall.features import mfcc, normalize, pcen, preemphasis
    from birdcall.features import normalize as normalize_module_name

    for name, value in (("mfcc", mfcc), ("normalize", normalize), ("pcen", pcen), ("preemphasis", preemphasis)):
        assert callable(value) and value.__name__ == name and value.__module__ == f"birdcall.features.{name}"
    assert normalize_module_name is features.normalize
    assert {"LogMel", "FeatureConfig", "log_mel"} <= set(dir(features))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        features.nothing_here  # noqa: B018
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(normalize(x, mode="none"), x)  # the function ran, not a module's attribute
    np.testing.assert_allclose(normalize(x, mode="minmax"), x / 5.0, atol=1e-4)  # (x - min) / (max - min + eps)
