"""GTCC channels inside exported graphs: torch vs ONNX Runtime vs OpenVINO (f32), whole graph and host STFT.

The gammatone filter bank, its dB and DCT are part of the graph like the mel bands, so every runtime must give the
torch model's probabilities to 1e-4 (absolute, pairwise), with every STFT form of the export and with the graph
cut at its power spectrum and fed by the host STFT (which then holds every FFT bin, 0..n_fft/2).
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from birdcall.data import LabelSet
from birdcall.export import export_onnx, export_openvino, read_export_info
from birdcall.export.metadata import HOST_STFT_KEY
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import OnnxScorer, OpenVinoScorer
from birdcall.testing.export import probe_windows, seeded_model, torch_probabilities

pytestmark = pytest.mark.integration  # exports and compiles ONNX and OpenVINO graphs (~10 s)

ov = pytest.importorskip("openvino")

BASE = dict(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0, n_gammatone=32, n_gtcc=13)
LABELS = LabelSet(("erirub", "turmer", "sylatr"))
TOL = 1e-4
CASES = {  # (model, channels and options, opset, stft form)
    "cnn-fused-fft": ("test_cnn", {"channels": ("logmel", "gtcc", "gtcc_delta")}, 17, "fft"),
    "sed-gtcc-only-op": ("test_sed", {"channels": ("gtcc", "gtcc_delta", "gtcc_delta2")}, 17, "op"),
    "cnn-pcen-preemphasis-dft": ("test_cnn", {"channels": ("logmel", "mfcc", "gtcc"), "scale": "pcen", "preemphasis": 0.97,
                                              "top_db": 80.0, "gammatone_fmin": 100.0}, 13, "dft"),
}  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{case: (model, onnx path, xml path)}``."""
    folder = tmp_path_factory.mktemp("gtcc")
    out = {}
    for case, (name, options, opset, stft) in CASES.items():
        model = seeded_model(name, features=FeatureConfig(**BASE, **options), num_classes=len(LABELS))
        onnx_path = export_onnx(model, folder / f"{case}.onnx", labels=LABELS, opset=opset, stft=stft)
        out[case] = model, onnx_path, export_openvino(onnx_path, folder / f"{case}.xml")
    return out


def _onnxruntime(path, windows: np.ndarray) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if o.name in ("clipwise", "framewise")]
    return dict(zip(names, session.run(names, {"waveform": windows})))


def _openvino(path, windows: np.ndarray, names) -> dict[str, np.ndarray]:
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    result = compiled.create_infer_request().infer({0: windows})
    return {name: np.array(result[compiled.output(name)]) for name in names}


@pytest.mark.parametrize("case", list(CASES))
def test_gtcc_models_agree_across_torch_onnxruntime_and_openvino(exported, case):
    model, onnx_path, xml_path = exported[case]
    features = model.feature_config
    windows = probe_windows(features, 5)
    expected = torch_probabilities(model, windows)
    results = {"torch": expected, "onnxruntime": _onnxruntime(onnx_path, windows), "openvino": _openvino(xml_path, windows, list(expected))}
    for name, scorer in (("onnxruntime-host", OnnxScorer(onnx_path, threads=1, frontend="host")),
                         ("openvino-host", OpenVinoScorer(xml_path, threads=1, frontend="host"))):  # fmt: skip
        assert scorer.frontend == "host"
        results[name] = {"clipwise": scorer(windows)}
    backends = list(results)
    for i, a in enumerate(backends):
        for b in backends[i + 1 :]:
            for output in set(results[a]) & set(results[b]):
                diff = float(np.abs(results[a][output].astype(np.float64) - results[b][output]).max())
                assert diff <= TOL, f"{case} {output}: {a} vs {b} differ by {diff:.2e}"
    assert read_export_info(onnx_path)[1] == features  # the GTCC fields travel with the model


def test_host_stft_of_a_gtcc_export_keeps_every_bin(exported):
    model, onnx_path, _ = exported["cnn-fused-fft"]
    import onnx

    metadata = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(metadata[HOST_STFT_KEY])["bins"] == [0, model.feature_config.n_fft // 2 + 1]
    assert model.frontend.gammatone is not None and torch.is_tensor(model.frontend.gammatone.weights)
