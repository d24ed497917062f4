"""OpenVINO IR export (converted from the birdcall ONNX graph, metadata in rt_info) and the OpenVINO scorer."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest

from birdcall.data import LabelSet
from birdcall.errors import CheckpointError, ExportError, ParameterError
from birdcall.export import FORMAT, export_onnx, export_openvino, read_export_info
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import OpenVinoScorer, Scorer, load_scorer
from birdcall.models import save_model
from birdcall.testing.export import probe_windows, seeded_model, torch_probabilities

pytestmark = pytest.mark.integration  # compiles OpenVINO models; its module fixtures alone take ~15 s

ov = pytest.importorskip("openvino")

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("erirub", "turmer", "sylatr"), common_names=("European Robin", "Merle noir – Amsel", 'Black"cap <&>'))
TOL = 1e-4


def _model(name: str, seed: int = 0):
    return seeded_model(name, features=SMALL, num_classes=len(LABELS), seed=seed)


@pytest.fixture(scope="module")
def irs(tmp_path_factory):
    """``{preset: (model, xml)}``: test_cnn converted from its ONNX file, test_sed and test_crnn from torch."""
    folder = tmp_path_factory.mktemp("ir")
    out = {}
    cnn = _model("test_cnn")
    onnx_path = export_onnx(cnn, folder / "test_cnn.onnx", labels=LABELS)
    out["test_cnn"] = cnn, export_openvino(onnx_path, folder / "test_cnn.xml")
    for name in ("test_sed", "test_crnn"):
        model = _model(name)
        out[name] = model, export_openvino(model, folder / f"{name}.xml", labels=LABELS)
    return out


@pytest.mark.integration
def test_ir_files_are_written_float32_without_leftovers(irs):
    _, xml = irs["test_cnn"]
    folder = xml.parent
    expected = [f"{n}.{ext}" for n in ("test_cnn", "test_sed", "test_crnn") for ext in ("xml", "bin")] + ["test_cnn.onnx"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)  # no temporary folders or files left behind
    assert 'element_type="f16"' not in xml.read_text()  # compress_to_fp16=False


@pytest.mark.parametrize("name", ["test_cnn", "test_sed", "test_crnn"])
@pytest.mark.parametrize("batch", [1, 5])
def test_openvino_f32_matches_torch_probabilities_for_any_batch(irs, name, batch):
    model, xml = irs[name]
    windows = probe_windows(SMALL, batch)
    expected = torch_probabilities(model, windows)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    result = compiled.create_infer_request().infer({0: windows})
    assert sorted(n for o in compiled.outputs for n in o.get_names() if n in ("clipwise", "framewise")) == sorted(expected)
    for key, value in expected.items():
        actual = np.array(result[compiled.output(key)])
        assert actual.shape == value.shape
        np.testing.assert_allclose(actual, value, rtol=0, atol=TOL, err_msg=f"{name} {key}")


def test_silence_gives_torch_probabilities_exactly(irs):
    # OpenVINO fuses torch's standardisation into its MVN kernel, whose mean of a constant -100 dB map is off by
    # one ulp; divided by std + 1e-6 that gave O(1) features. The export makes constant maps exactly zero.
    model, xml = irs["test_cnn"]
    silence = np.zeros((2, SMALL.clip_samples), np.float32)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    actual = np.array(compiled.create_infer_request().infer({0: silence})[compiled.output("clipwise")])
    np.testing.assert_allclose(actual, torch_probabilities(model, silence)["clipwise"], rtol=0, atol=1e-6)


def test_rt_info_carries_the_metadata(irs):
    _, xml = irs["test_sed"]
    ir = ov.Core().read_model(str(xml))
    assert ir.get_rt_info(["birdcall", "format"]).astype(str) == FORMAT
    assert json.loads(ir.get_rt_info(["birdcall", "labels"]).astype(str)) == LABELS.to_dict()
    assert json.loads(ir.get_rt_info(["birdcall", "model"]).astype(str))["arch"] == "sed"
    labels, features, info = read_export_info(xml)
    assert labels == LABELS and labels.common_names[2] == 'Black"cap <&>' and features == SMALL
    assert info["format"] == FORMAT and info["model"]["num_classes"] == 3


def test_openvino_scorer_compiles_f32_with_threads_and_scores_like_torch(irs):
    model, xml = irs["test_sed"]
    scorer = load_scorer(xml, backend="openvino", threads=1)
    assert isinstance(scorer, OpenVinoScorer) and isinstance(scorer, Scorer)
    assert scorer.labels == LABELS and scorer.features == SMALL
    assert scorer.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert scorer.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    windows = probe_windows(SMALL, 5)
    scores = scorer(windows)
    assert scores.dtype == np.float32 and scores.shape == (5, 3)
    np.testing.assert_allclose(scores, torch_probabilities(model, windows)["clipwise"], rtol=0, atol=TOL)
    first = scorer(windows[:1]).copy()
    scorer(windows[1:])  # the infer request is reused: earlier results must not change
    np.testing.assert_array_equal(first, scores[:1])
    assert scorer(np.zeros((0, SMALL.clip_samples), np.float32)).shape == (0, 3)
    with pytest.raises(ParameterError, match=r"OpenVinoScorer: expected \(batch, 32000\) windows"):
        scorer(np.zeros(SMALL.clip_samples, np.float32))


def test_streams_split_each_batch_and_give_the_same_scores(irs):
    model, xml = irs["test_cnn"]
    # the whole graph (`_run`); the host-STFT path's streams are tested in test_host.py
    single = load_scorer(xml, backend="openvino", threads=2, frontend="graph")
    multi = load_scorer(xml, backend="openvino", threads=2, streams=2, frontend="graph")
    assert multi.compiled.get_property("NUM_STREAMS") == 2 and len(multi._requests) == 2
    windows = probe_windows(SMALL, 5)  # an odd batch: parts of 3 and 2 windows
    expected = single(windows)
    np.testing.assert_allclose(multi(windows), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(multi(windows[:1]), expected[:1], rtol=0, atol=1e-6)  # one window: one part only
    np.testing.assert_allclose(multi(windows), torch_probabilities(model, windows)["clipwise"], rtol=0, atol=TOL)
    with pytest.raises(ParameterError, match="streams must be a positive integer"):
        load_scorer(xml, backend="openvino", streams=0)
    with pytest.raises(ParameterError, match="openvino backend only"):
        load_scorer(xml.with_suffix(".onnx"), backend="onnx", streams=2)


def test_openvino_scorer_runs_onnx_files_and_checkpoints(tmp_path):
    model = _model("test_cnn")
    windows = probe_windows(SMALL, 4)
    expected = torch_probabilities(model, windows)["clipwise"]
    onnx_path = export_onnx(model, tmp_path / "m.onnx", labels=LABELS)
    checkpoint = save_model(model, tmp_path / "m.safetensors", labels=LABELS)
    for source in (onnx_path, checkpoint):  # the checkpoint is exported on the fly to a temporary ONNX file
        scorer = load_scorer(source, backend="openvino", threads=1)
        assert isinstance(scorer, OpenVinoScorer) and scorer.labels == LABELS and scorer.features == SMALL
        np.testing.assert_allclose(scorer(windows), expected, rtol=0, atol=TOL, err_msg=str(source))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.safetensors"]
    with pytest.raises(ParameterError, match=r"m\.bin: the openvino backend runs OpenVINO IR \.xml or \.onnx files"):
        load_scorer(tmp_path / "m.bin", backend="openvino")


def test_an_ir_without_birdcall_metadata_gives_a_clear_error(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "plain.onnx"))
    ov.save_model(ov.convert_model(str(tmp_path / "plain.onnx")), str(tmp_path / "plain.xml"))
    for opener in (read_export_info, lambda p: load_scorer(p, backend="openvino"), lambda p: export_openvino(tmp_path / "plain.onnx", p)):
        with pytest.raises(CheckpointError, match=r"plain\.(xml|onnx): exported model without birdcall metadata"):
            opener(tmp_path / "plain.xml")
    (tmp_path / "broken.xml").write_text("<net><layers>")
    with pytest.raises(CheckpointError, match=r"broken\.xml: not a readable OpenVINO IR"):
        read_export_info(tmp_path / "broken.xml")
    with pytest.raises(CheckpointError, match=r"none\.xml: file not found"):
        load_scorer(tmp_path / "none.xml", backend="openvino")


def test_labels_that_do_not_match_the_graph_outputs_are_refused_when_the_ir_is_opened(irs, tmp_path, monkeypatch):
    _, xml = irs["test_cnn"]
    ir = ov.Core().read_model(str(xml))
    ir.set_rt_info(json.dumps({"codes": [*LABELS.codes, "extra"]}), ["birdcall", "labels"])
    edited = tmp_path / "edited.xml"
    ov.save_model(ir, str(edited), compress_to_fp16=False)
    onnx_proto = onnx.load(str(xml.with_suffix(".onnx")))
    props = {prop.key: prop.value for prop in onnx_proto.metadata_props}
    onnx.helper.set_model_props(onnx_proto, {**props, "labels": json.dumps({"codes": [*LABELS.codes, "extra"]})})
    onnx.save(onnx_proto, str(tmp_path / "edited.onnx"))
    monkeypatch.setattr(ov.Core, "compile_model", lambda *a, **k: pytest.fail("compiled a model whose labels do not match"))
    for path in (edited, tmp_path / "edited.onnx"):
        message = rf"^{re.escape(str(path))}: 4 labels in its metadata for a graph with 3 outputs \('clipwise'\)$"
        for opener in (read_export_info, lambda p: load_scorer(p, backend="openvino"), lambda p: OpenVinoScorer(p, frontend="graph")):
            with pytest.raises(CheckpointError, match=message):
                opener(path)

def test_bad_arguments_raise_parameter_error(tmp_path):
    model = _model("test_cnn")
    with pytest.raises(ParameterError, match=r"m\.bin: an OpenVINO IR must be written to a \.xml file"):
        export_openvino(model, tmp_path / "m.bin", labels=LABELS)
    with pytest.raises(ParameterError, match="labels are required to export a torch model"):
        export_openvino(model, tmp_path / "m.xml")
    onnx_path = export_onnx(model, tmp_path / "m.onnx", labels=LABELS, check=False)
    with pytest.raises(ParameterError, match="labels come from the ONNX file"):
        export_openvino(onnx_path, tmp_path / "m.xml", labels=LABELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.integration
def test_an_ir_that_differs_from_onnx_runtime_is_refused_and_not_written(tmp_path, monkeypatch):
    model, other = _model("test_cnn", seed=0), _model("test_cnn", seed=1)
    good = export_onnx(model, tmp_path / "good.onnx", labels=LABELS)
    wrong = export_onnx(other, tmp_path / "wrong.onnx", labels=LABELS)
    convert = ov.convert_model
    monkeypatch.setattr(ov, "convert_model", lambda path, **kw: convert(str(wrong), **kw))  # converts the wrong graph
    with pytest.raises(ExportError, match=r"m\.xml: OpenVINO \(f32\) and ONNX Runtime differ by \d\.\d\de-\d\d on clipwise") as err:
        export_openvino(good, tmp_path / "m.xml")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.onnx", "wrong.onnx"]
