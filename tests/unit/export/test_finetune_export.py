"""Exporting a ``birdnet_finetune`` model (all torch: BirdNET's port, the trained tail, the head) to ONNX and
OpenVINO, and scoring with the exports as with the torch model; a ``birdnet_probe`` model is still refused.
Needs the BirdNET extra (``make birdnet``; ``make test`` installs it and runs the slow tier, so CI runs these)."""

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.birdnet, pytest.mark.integration]  # ~1-2 min (tracing, ONNX Runtime, OpenVINO): in `make test`, not the quick tier


@pytest.fixture(scope="module")
def model_and_labels():
    from birdcall.data.labels import LabelSet
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model

    torch.manual_seed(0)
    model = create_model(
        "birdnet_finetune",
        num_classes=3,
        features=FeatureConfig(sample_rate=48_000),
        heads=2,
    ).eval()
    rng = np.random.default_rng(0)
    model.set_standardization(rng.normal(0.5, 0.3, (64, model.num_inputs)))  # a head that is not the identity
    with torch.no_grad():
        for p in model.tail.parameters():
            p.mul_(1.01)  # a tail that differs from BirdNET's: the export must carry the model's own tail
    return model, LabelSet(("a", "b", "c"))


def _windows():
    """Sound: a chirp in noise, noise, and a quiet stretch (-60 dB). Not digital silence: there BirdNET's
    ``(m*m)**0.23`` magnifies float32 rounding of ~0, and the FFT and DFT forms of its spectrogram differ by
    up to 1e-2 in probability (the export's own check compares with the DFT form, which it exports)."""
    rng = np.random.default_rng(1)
    t = np.arange(240_000) / 48_000
    return np.stack([0.2 * np.sin(2 * np.pi * (2500 + 800 * t) * t) + 0.02 * rng.standard_normal(t.size), 0.05 * rng.standard_normal(t.size),
                     1e-3 * rng.standard_normal(t.size)]).astype(np.float32)  # fmt: skip


@pytest.mark.integration
def test_onnx_and_openvino_exports_score_like_the_torch_model(model_and_labels, tmp_path):
    import onnxruntime as ort
    import openvino as ov

    from birdcall.export import export_onnx, export_openvino

    model, labels = model_and_labels
    x = _windows()
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    onnx_path = export_onnx(model, tmp_path / "ft.onnx", labels=labels)  # its own check: ORT vs torch within 1e-4
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    xml = export_openvino(onnx_path, tmp_path / "ft.xml")
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    np.testing.assert_allclose(compiled(x)[0], expected, atol=1e-4)


def test_a_probe_model_is_still_refused(tmp_path):
    from birdcall.data.labels import LabelSet
    from birdcall.errors import ExportError
    from birdcall.export import export_onnx
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model

    probe = create_model("birdnet_probe", num_classes=2, features=FeatureConfig(sample_rate=48_000))
    with pytest.raises(ExportError, match="TFLite"):
        export_onnx(probe, tmp_path / "p.onnx", labels=LabelSet(("a", "b")))
