"""Torch vs ONNX Runtime vs OpenVINO (f32) on the seed recipe's front end (32 kHz, n_fft 2048, 128 mels, 5 s).

The exported graphs (front end and sigmoid inside) must give the torch model's probabilities to 1e-4 absolute,
pairwise, for synthetic windows and for real NIPS4B field recordings, with each STFT form of the export: the
two-stage DFT of two MatMuls (``stft="fft"``, the default), the STFT operator (opset 17) and the DFT convolution.
So must the graphs cut at their power spectrum and fed by the host STFT (``frontend="host"``, what ``birdcall
predict``/``analyze`` run by default), in both runtimes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.data import LabelSet
from birdcall.export import export_onnx, export_openvino
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import OnnxScorer, OpenVinoScorer
from birdcall.models import create_model
from birdcall.testing import signals
from birdcall.testing.export import parity_tolerance

ov = pytest.importorskip("openvino")
ort = pytest.importorskip("onnxruntime")

FEATURES = FeatureConfig()  # the seed recipe: what real models use
LABELS = LabelSet(tuple(f"sp{i:02d}" for i in range(8)))
TOL = 1e-4
CASES = [("test_cnn", 17, "fft"), ("test_cnn", 17, "op"), ("test_cnn", 13, "dft"), ("test_sed", 13, "fft"), ("test_sed", 17, "op"), ("test_crnn", 17, "fft"),
         ("test_vit", 17, "fft"), ("test_sed_vit", 17, "fft")]  # fmt: skip  (SDPA needs opset >= 14)
NIPS4B_CLIPS = (
    "train_audio/sylmel/trainfile002.ogg",
    "train_audio/erirub/trainfile004.ogg",
    "train_audio/phofem/trainfile006.ogg",  # 2.7 s: zero-padded to a 5-s window, as the final clip of a file is
    "train_audio/carcan/trainfile010.ogg",
    "background/trainfile009.ogg",
    "background/trainfile018.ogg",
)


class _Backends:
    """One model in torch, ONNX Runtime and OpenVINO f32; ``run(windows)`` -> ``{backend: {output: array}}``."""

    def __init__(self, model, onnx_path, xml_path):
        self.model = model
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.compiled = ov.Core().compile_model(str(xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
        # what predict/analyze run: the graph cut at its power spectrum, fed by the host STFT
        self.host = {"onnxruntime-host": OnnxScorer(onnx_path, threads=1, frontend="host"),
                     "openvino-host": OpenVinoScorer(xml_path, threads=1, streams=2, frontend="host")}  # fmt: skip

    def run(self, windows: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        with torch.no_grad():
            out = self.model(torch.from_numpy(windows))
        out = out if isinstance(out, dict) else {"clipwise": out}
        result = self.compiled.create_infer_request().infer({0: windows})
        results = {
            "torch": {k: torch.sigmoid(v).numpy() for k, v in out.items()},
            "onnxruntime": dict(zip(self.names, self.session.run(self.names, {"waveform": windows}))),
            "openvino": {name: np.array(result[self.compiled.output(name)]) for name in self.names},
        }
        for name, scorer in self.host.items():  # the scorers return clipwise only
            assert scorer.frontend == "host"
            results[name] = {"clipwise": scorer(windows)}
        return results


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_parity")
    out = {}
    for name, opset, stft in CASES:
        with torch.random.fork_rng():
            torch.manual_seed(7)
            model = create_model(name, num_classes=len(LABELS), features=FEATURES).eval()
        onnx_path = export_onnx(model, folder / f"{name}_{opset}_{stft}.onnx", labels=LABELS, opset=opset, stft=stft)
        out[name, opset, stft] = _Backends(model, onnx_path, export_openvino(onnx_path, folder / f"{name}_{opset}_{stft}.xml"))
    return out


def _assert_agree(results: dict[str, dict[str, np.ndarray]], expected_outputs: set[str], where: str, tolerance: dict[str, np.ndarray]) -> None:
    """Every pair of backends within ``tolerance[output]`` (per window: TOL, or 4x torch's own float32 error)."""
    backends = list(results)
    for output in expected_outputs:
        for i, a in enumerate(backends):
            for b in backends[i + 1 :]:
                if output not in results[a] or output not in results[b]:
                    continue
                x, y = results[a][output], results[b][output]
                assert x.shape == y.shape, f"{where} {output}: {a} {x.shape} vs {b} {y.shape}"
                diff = np.abs(x.astype(np.float64) - y)
                assert np.all(diff <= tolerance[output]), f"{where} {output}: {a} vs {b} differ by {diff.max():.2e}"


def _synthetic_windows() -> np.ndarray:
    rng = np.random.default_rng(2026)
    sr, d = FEATURES.sample_rate, FEATURES.clip_duration
    windows = [
        np.zeros(FEATURES.clip_samples, np.float32),  # digital silence (zero-padded ends of recordings)
        signals.tone(frequency_hz=3000.0, duration=d, sample_rate=sr),
        signals.chirp(start_hz=200.0, end_hz=13_000.0, duration=d, sample_rate=sr),
        signals.white_noise(rng=rng, duration=d, sample_rate=sr, rms=0.3),  # loud, broadband
        signals.pink_noise(rng=rng, duration=d, sample_rate=sr, rms=1e-4),  # very quiet
    ]
    for family in ("sweep", "trill", "harmonic", "buzz", "warble"):
        windows.append(signals.call_in_noise(rng=rng, duration=d, family=family, call_start=1.5, snr_db=6.0, sample_rate=sr)[0])
    return np.stack(windows).astype(np.float32)


def _tolerance(model, windows: np.ndarray, name: str) -> dict[str, np.ndarray]:
    """TOL per window, raised to 4x torch's own float32 error (vs float64) where that is larger: only the audio
    transformers on the clean chirp, whose near-empty bins the float32 front end rounds to a few 1e-2 dB."""
    tolerance = parity_tolerance(model, windows, TOL)
    if not name.endswith("vit"):
        assert all(np.all(t == TOL) for t in tolerance.values()), name  # the CNN families meet TOL itself
    return tolerance


@pytest.mark.parametrize(("name", "opset", "stft"), CASES, ids=[f"{n}-opset{o}-{s}" for n, o, s in CASES])
@pytest.mark.integration
def test_synthetic_windows_agree_across_backends(backends, name, opset, stft):
    windows = _synthetic_windows()
    results = backends[name, opset, stft].run(windows)
    assert set(results["torch"]) == set(results["onnxruntime"]) == set(results["openvino"])
    assert {"onnxruntime-host", "openvino-host"} <= set(results)
    _assert_agree(results, set(results["torch"]), f"{name} opset {opset} stft {stft}", _tolerance(backends[name, opset, stft].model, windows, name))


@pytest.mark.parametrize(("name", "opset", "stft"), CASES, ids=[f"{n}-opset{o}-{s}" for n, o, s in CASES])
@pytest.mark.integration
def test_real_nips4b_windows_agree_across_backends(backends, name, opset, stft, nips4b_clip):
    windows = np.zeros((len(NIPS4B_CLIPS), FEATURES.clip_samples), np.float32)
    for row, clip in zip(windows, NIPS4B_CLIPS):
        y = nips4b_clip(clip, FEATURES.sample_rate)[: FEATURES.clip_samples]
        row[: y.size] = y
    assert np.abs(windows).max() > 0.01  # real audio was loaded
    results = backends[name, opset, stft].run(windows)
    _assert_agree(results, set(results["torch"]), f"{name} opset {opset} stft {stft} NIPS4B", _tolerance(backends[name, opset, stft].model, windows, name))
