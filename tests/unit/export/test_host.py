"""The exported graph cut at its power spectrum and fed by the host STFT (birdcall.export.host), and the
scorers' ``frontend`` option: the same probabilities as the whole graph and torch, for every model kind and
STFT form; older exports without the record still run their whole graph."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from birdcall.data import LabelSet
from birdcall.errors import ExportError, ParameterError
from birdcall.export import export_onnx, export_openvino, read_export_info
from birdcall.export import host as host_module
from birdcall.export import onnx as onnx_export
from birdcall.export.host import host_power_spectrum, onnx_body, openvino_body, resolve_frontend
from birdcall.export.metadata import HOST_STFT_KEY, POWER_TENSOR
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import OnnxScorer, OpenVinoScorer, load_scorer
from birdcall.models import save_model
from birdcall.testing.export import probe_windows, seeded_model, torch_probabilities

pytestmark = pytest.mark.integration  # exports and compiles ONNX and OpenVINO graphs; its module fixtures alone take ~20 s

ov = pytest.importorskip("openvino")

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("erirub", "turmer", "sylatr"))
TOL = 1e-4
# (model, features, opset, stft form): every STFT form; pre-emphasis, PCEN and delta channels; a recurrent head,
# whose initial state OpenVINO sizes from the waveform input's shape
CASES = {
    "cnn-fft": ("test_cnn", SMALL, 17, "fft"),
    "cnn-op": ("test_cnn", SMALL, 17, "op"),
    "cnn-dft": ("test_cnn", SMALL, 13, "dft"),
    "sed-preemphasis-pcen-deltas": ("test_sed", FeatureConfig(**{**SMALL.__dict__, "preemphasis": 0.97, "scale": "pcen", "channels": ("logmel", "logmel_delta")}), 17, "fft"),
    "crnn-op": ("test_crnn", SMALL, 17, "op"),
}  # fmt: skip


def _model(name: str, features: FeatureConfig, seed: int = 0):
    return seeded_model(name, features=features, num_classes=len(LABELS), seed=seed)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{case: (model, onnx path, xml path)}``."""
    folder = tmp_path_factory.mktemp("host")
    out = {}
    for case, (name, features, opset, stft) in CASES.items():
        model = _model(name, features)
        onnx_path = export_onnx(model, folder / f"{case}.onnx", labels=LABELS, opset=opset, stft=stft)
        out[case] = model, onnx_path, export_openvino(onnx_path, folder / f"{case}.xml")
    return out


def _session(proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.integration
def test_cut_graphs_fed_by_the_host_stft_give_torch_probabilities(exported, case):
    model, onnx_path, xml_path = exported[case]
    _, features, info = read_export_info(onnx_path)
    assert info["host_stft"] == read_export_info(xml_path)[2]["host_stft"]  # the IR carries the record too
    windows = probe_windows(features, 5)
    expected = torch_probabilities(model, windows)
    power = host_power_spectrum(features, info)(windows)

    body = onnx_body(onnx.load(str(onnx_path)), list(expected))
    assert [i.name for i in body.graph.input] == [POWER_TENSOR]  # the waveform and the STFT are gone
    assert not any("waveform" in n.input or n.op_type == "STFT" for n in body.graph.node)
    assert not any("fft_stage" in t.name or "dft_basis" in t.name for t in body.graph.initializer)
    onnx_out = dict(zip(expected, _session(body).run(list(expected), {POWER_TENSOR: power})))

    ov_body = openvino_body(ov, ov.Core().read_model(str(xml_path)))
    assert [p.get_friendly_name() for p in ov_body.get_parameters()] == [POWER_TENSOR]
    compiled = ov.Core().compile_model(ov_body, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    result = compiled.create_infer_request().infer({0: power})
    for key, value in expected.items():
        np.testing.assert_allclose(onnx_out[key], value, rtol=0, atol=TOL, err_msg=f"{case} onnx {key}")
        np.testing.assert_allclose(np.array(result[compiled.output(key)]), value, rtol=0, atol=TOL, err_msg=f"{case} openvino {key}")


@pytest.mark.parametrize("case", ["cnn-fft", "sed-preemphasis-pcen-deltas", "crnn-op"])
@pytest.mark.parametrize("streams", [1, 2])
def test_scorers_host_and_graph_front_ends_agree_in_order(exported, case, streams):
    """11 windows: not a multiple of any chunk size; a permuted batch gives the permuted scores (no mix-up)."""
    model, onnx_path, xml_path = exported[case]
    windows = probe_windows(model.feature_config, 11, seed=4)
    windows *= np.linspace(0.2, 1.0, 11, dtype=np.float32)[:, None]  # 11 distinct windows
    expected = torch_probabilities(model, windows)["clipwise"]
    scorers = {
        "onnx-host": OnnxScorer(onnx_path, threads=1),  # auto: the file records its power spectrum
        "onnx-graph": OnnxScorer(onnx_path, threads=1, frontend="graph"),
        "openvino-host": OpenVinoScorer(xml_path, threads=2, streams=streams, frontend="host"),
        "openvino-graph": OpenVinoScorer(xml_path, threads=2, streams=streams, frontend="graph"),
    }
    order = np.random.default_rng(0).permutation(11)
    for name, scorer in scorers.items():
        assert scorer.frontend == name.split("-")[1]
        np.testing.assert_allclose(scorer(windows), expected, rtol=0, atol=TOL, err_msg=name)
        np.testing.assert_allclose(scorer(windows[order]), expected[order], rtol=0, atol=TOL, err_msg=f"{name} permuted")
        assert scorer(windows[:0]).shape == (0, len(LABELS))


def test_a_failure_in_the_host_stft_reaches_the_caller(exported):
    _, onnx_path, xml_path = exported["cnn-fft"]
    windows = probe_windows(SMALL, 20)

    class Failing:  # the second chunk's STFT fails
        def __init__(self, real):
            self.real, self.calls = real, 0
            self.output_shape = real.output_shape

        def __call__(self, x, out=None):
            self.calls += 1
            if self.calls == 2:
                raise MemoryError("no room for the spectrum")
            return self.real(x, out)

    for scorer in (OnnxScorer(onnx_path), OpenVinoScorer(xml_path, streams=2)):
        real = scorer._stft
        scorer._stft = Failing(real)
        with pytest.raises(MemoryError, match="no room"):
            scorer(windows)
        assert scorer._stft.calls == 2
        scorer._stft = real
        np.testing.assert_allclose(scorer(windows), OnnxScorer(onnx_path, frontend="graph")(windows), rtol=0, atol=TOL)  # still usable


def _strip_host_record(src, dest):
    proto = onnx.load(str(src))
    kept = [p for p in proto.metadata_props if p.key != HOST_STFT_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(dest))
    return dest


def test_an_older_export_without_the_record_runs_its_whole_graph(exported, tmp_path):
    model, onnx_path, _ = exported["cnn-fft"]
    old = _strip_host_record(onnx_path, tmp_path / "old.onnx")
    assert "host_stft" not in read_export_info(old)[2]
    windows = probe_windows(SMALL, 3)
    for scorer in (OnnxScorer(old), OpenVinoScorer(old)):
        assert scorer.frontend == "graph"
        np.testing.assert_allclose(scorer(windows), torch_probabilities(model, windows)["clipwise"], rtol=0, atol=TOL)
    with pytest.raises(ParameterError, match=r"old\.onnx: frontend='host' needs an export that records its power spectrum"):
        OnnxScorer(old, frontend="host")
    with pytest.raises(ParameterError, match=r"frontend must be one of \('auto', 'graph', 'host'\)"):
        OpenVinoScorer(onnx_path, frontend="gpu")


def test_resolve_frontend():
    assert resolve_frontend("auto", {"host_stft": {}}, "m") == "host"
    assert resolve_frontend("auto", {}, "m") == "graph"
    assert resolve_frontend("graph", {"host_stft": {}}, "m") == "graph"
    with pytest.raises(ParameterError, match="m.onnx: frontend='host'"):
        resolve_frontend("host", {}, "m.onnx")


def test_load_scorer_passes_the_frontend_and_refuses_it_for_torch(exported, tmp_path):
    model, onnx_path, xml_path = exported["cnn-fft"]
    checkpoint = save_model(model, tmp_path / "m.safetensors", labels=LABELS)
    assert load_scorer(onnx_path, backend="onnx", frontend="graph").frontend == "graph"
    assert load_scorer(xml_path, backend="openvino").frontend == "host"
    assert load_scorer(checkpoint, backend="onnx", frontend="graph").frontend == "graph"  # exported on the fly
    assert load_scorer(checkpoint, backend="openvino").frontend == "host"
    with pytest.raises(ParameterError, match="frontend='host' applies to the onnx and openvino backends only"):
        load_scorer(checkpoint, backend="torch", frontend="host")


def test_the_exporter_refuses_a_host_path_that_differs_from_torch(tmp_path, monkeypatch):
    real = host_module.host_power_spectrum

    def louder(features, info):
        spectrum = real(features, info)
        return lambda windows: spectrum(windows) * 4.0  # +6 dB: the standardised features barely move...

    monkeypatch.setattr(host_module, "host_power_spectrum", louder)
    with pytest.raises(ExportError, match=r"m\.onnx: the graph fed by the host STFT and torch differ by"):
        model = _model("test_cnn", FeatureConfig(**{**SMALL.__dict__, "normalize": "none"}))  # ...so no standardisation
        export_onnx(model, tmp_path / "m.onnx", labels=LABELS)
    assert list(tmp_path.iterdir()) == []


def test_the_power_tensor_must_be_read_by_the_graph():
    """If the exporter wrote the power as a copy that nothing reads, cutting there would cut nothing."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("clipwise", TensorProto.FLOAT, [1, 4])
    p = helper.make_tensor_value_info(POWER_TENSOR, TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["waveform"], ["clipwise"]), helper.make_node("Identity", ["waveform"], [POWER_TENSOR])]
    proto = helper.make_model(helper.make_graph(nodes, "g", [x], [y, p]))
    with pytest.raises(ExportError, match="does not read its 'power_spectrum' tensor"):
        onnx_export._unlist_power_output(proto)
    with pytest.raises(ParameterError, match="has no 'power_spectrum' tensor"):
        onnx_body(helper.make_model(helper.make_graph(nodes[:1], "g", [x], [y])), ["clipwise"])


@pytest.mark.integration
def test_an_ir_whose_conversion_lost_the_tensor_warns_and_runs_its_whole_graph(exported, tmp_path, monkeypatch):
    from birdcall.export import openvino as openvino_export

    _, onnx_path, _ = exported["cnn-fft"]
    monkeypatch.setattr(openvino_export, "has_power_tensor", lambda model: False)
    with pytest.warns(UserWarning, match="lost the 'power_spectrum' tensor"):
        xml = export_openvino(onnx_path, tmp_path / "m.xml")
    assert "host_stft" not in read_export_info(xml)[2]
    assert OpenVinoScorer(xml).frontend == "graph"
    rt_info = ov.Core().read_model(str(xml)).get_rt_info()
    assert "host_stft" not in json.dumps(str(rt_info))
