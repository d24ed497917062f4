"""ONNX export (front end and sigmoid in the graph), its metadata, and the ONNX Runtime scorer."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import torch

from birdcall.config import to_dict
from birdcall.data import LabelSet
from birdcall.errors import CheckpointError, ExportError, ParameterError
from birdcall.export import FORMAT, export_onnx, read_export_info, resolve_stft_method
from birdcall.export import onnx as onnx_export
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import OnnxScorer, Scorer, load_scorer
from birdcall.models import clip_logits, save_model
from birdcall.testing import signals
from birdcall.testing.export import (
    parity_tolerance,
    probe_windows,
    seeded_model,
    torch_probabilities,
)

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("erirub", "turmer", "sylatr"), ("Erithacus rubecula", "Turdus merula", "Sylvia atricapilla"),
                  ("European Robin", "Merle noir – Amsel", "Blackcap"))  # fmt: skip
TOL = 1e-4
FAMILIES = ("test_cnn", "test_sed", "test_crnn", "test_vit", "test_sed_vit")


def _model(name: str, features: FeatureConfig = SMALL, seed: int = 0):
    return seeded_model(name, features=features, num_classes=len(LABELS), seed=seed)


def _run(path, windows: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"waveform": windows})))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{preset: (model, path)}``: every tiny family exported at opset 17 (traced at batch 2)."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in FAMILIES:
        model = _model(name)
        out[name] = model, export_onnx(model, folder / f"{name}.onnx", labels=LABELS)
    return out


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.integration
def test_onnx_runtime_matches_torch_probabilities_for_any_batch(exported, name, batch):
    model, path = exported[name]
    windows = probe_windows(SMALL, batch)
    expected, actual = torch_probabilities(model, windows), _run(path, windows)
    tolerance = parity_tolerance(model, windows, TOL)  # TOL, or 4x torch's own float32 error where that is larger
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert actual[key].dtype == np.float32 and actual[key].shape == expected[key].shape
        assert np.all(np.abs(actual[key] - expected[key]) <= tolerance[key]), f"{name} {key}"
        if not name.endswith("vit"):
            assert np.all(tolerance[key] == TOL)  # the CNN families meet TOL itself
        assert np.all((actual[key] >= 0) & (actual[key] <= 1))  # probabilities: the sigmoid is in the graph


def test_graph_signature_input_waveform_dynamic_batch_static_samples(exported):
    for name in FAMILIES:
        outputs = ["clipwise"] if name in ("test_cnn", "test_vit") else ["clipwise", "framewise"]
        graph = onnx.load(str(exported[name][1])).graph
        (waveform,) = graph.input
        dims = waveform.type.tensor_type.shape.dim
        assert waveform.name == "waveform" and waveform.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert dims[0].dim_param and not dims[0].dim_value and dims[1].dim_value == SMALL.clip_samples
        assert [o.name for o in graph.output] == outputs
        assert all(o.type.tensor_type.shape.dim[0].dim_param for o in graph.output)


def test_sed_framewise_has_the_frame_axis(exported):
    model, path = exported["test_sed"]
    actual = _run(path, probe_windows(SMALL, 3))
    with torch.no_grad():
        frames = model(torch.zeros(1, SMALL.clip_samples))["framewise"].shape[1]
    assert actual["clipwise"].shape == (3, 3) and actual["framewise"].shape == (3, frames, 3) and frames > 1


def test_metadata_round_trip_and_checker(exported):
    model, path = exported["test_sed"]
    onnx.checker.check_model(str(path), full_check=True)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert set(props) == {"birdcall.format", "labels", "features", "model", "birdcall.host_stft"}
    bins = model.frontend.logmel._bins  # the FFT bins the filter bank uses: the power tensor's last axis
    assert json.loads(props["birdcall.host_stft"]) == {"tensor": "power_spectrum", "bins": [bins.start, bins.stop]}
    assert props["birdcall.format"] == FORMAT == "birdcall.onnx/1"
    assert json.loads(props["model"]) == to_dict(model.config)
    labels, features, info = read_export_info(path)
    assert labels == LABELS and labels.common_names[1] == "Merle noir – Amsel"
    assert features == SMALL and info["model"]["arch"] == "sed" and info["format"] == FORMAT


@pytest.mark.parametrize(
    ("opset", "stft", "op_type"),
    [(17, "auto", "MatMul"), (13, "auto", "MatMul"), (17, "op", "STFT"), (18, "op", "STFT"), (13, "dft", "Conv"), (17, "fft", "MatMul")],
)
def test_each_stft_method_writes_its_ops_and_matches_torch(tmp_path, opset, stft, op_type):
    model = _model("test_cnn")
    windows = probe_windows(SMALL, 5)
    expected = torch_probabilities(model, windows)["clipwise"]
    path = export_onnx(model, tmp_path / f"m{opset}{stft}.onnx", labels=LABELS, opset=opset, stft=stft)
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    assert ("STFT" in ops) is (op_type == "STFT")
    if op_type == "MatMul":  # the two DFT stages; test_cnn's head is Gemm, so these are the front end's
        assert ops.count("MatMul") >= 2 and "STFT" not in ops
    conv_weights = {i.name: i for i in proto.graph.initializer}
    big_dft = [n for n in proto.graph.node if n.op_type == "Conv" and any(
        conv_weights.get(x) is not None and conv_weights[x].dims[-1] == SMALL.n_fft for x in n.input)]
    assert bool(big_dft) is (op_type == "Conv")  # a Conv1d with an n_fft-wide kernel is the DFT convolution
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == opset
    np.testing.assert_allclose(_run(path, windows)["clipwise"], expected, rtol=0, atol=TOL, err_msg=f"opset {opset} {stft}")


def test_stft_method_errors_name_the_problem():
    with pytest.raises(ParameterError, match="opset >= 17"):
        resolve_stft_method(SMALL, 13, "op")
    with pytest.raises(ParameterError, match="hop_length to divide n_fft"):
        resolve_stft_method(FeatureConfig(n_fft=512, hop_length=160, fmax=8000.0), 17, "fft")
    with pytest.raises(ParameterError, match="stft must be one of"):
        resolve_stft_method(SMALL, 17, "fast")
    # where "fft" does not apply, auto falls back to the STFT operator or the DFT convolution
    odd_hop = FeatureConfig(n_fft=512, hop_length=160, fmax=8000.0)
    assert resolve_stft_method(odd_hop, 17) == "op" and resolve_stft_method(odd_hop, 13) == "dft"


@pytest.mark.parametrize(
    "features",
    [
        FeatureConfig(),  # the recipe: n_fft 2048 = 32 x 64, bins 3..896
        FeatureConfig(n_fft=1024, hop_length=256, n_mels=64, fmin=0.0, fmax=16_000.0),  # every bin up to Nyquist
        FeatureConfig(n_fft=384, hop_length=128, n_mels=32, fmin=1000.0, fmax=6000.0, clip_duration=0.5),  # 384 = 2^7 x 3
    ],
    ids=["default", "full-band", "mixed-radix"],
)
def test_two_stage_dft_equals_torch_stft_power(features, rng):
    from birdcall.export.onnx import _ExportLogMel
    from birdcall.features.mel import LogMel

    source = LogMel(features)
    fft = _ExportLogMel(source, method="fft")
    n1, n2, _ = fft._fft_sizes
    assert n1 * n2 == features.n_fft and n1 > 1 and n2 > 1
    waveform = torch.from_numpy(rng.standard_normal((3, features.clip_samples)).astype(np.float32))
    waveform[1] *= 0.0  # digital silence gives exact zeros
    expected = source.power_frames(waveform)
    actual = fft.power_frames(waveform)
    assert actual.shape == expected.shape
    assert torch.count_nonzero(actual[1]) == 0
    scale = expected.abs().max()
    torch.testing.assert_close(actual / scale, expected / scale, rtol=0, atol=2e-6)


@pytest.mark.integration
def test_multichannel_pcen_front_end_with_preemphasis_exports(tmp_path):
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0, scale="pcen",
                             preemphasis=0.97, top_db=80.0, channels=("logmel", "logmel_delta2", "mfcc", "freqpos"))  # fmt: skip
    model = _model("test_sed", features)
    windows = probe_windows(features, 5)
    for opset in (17, 13):  # PCEN's expm1 has no ONNX form in torch's exporter: written as exp(y) - 1
        path = export_onnx(model, tmp_path / f"pcen{opset}.onnx", labels=LABELS, opset=opset)
        actual, expected = _run(path, windows), torch_probabilities(model, windows)
        for key in expected:
            np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=TOL, err_msg=f"opset {opset} {key}")
    assert read_export_info(path)[1] == features


@pytest.mark.parametrize("bias", [-300.0, 300.0])
def test_saturated_sed_frames_stay_finite_and_match_torch(tmp_path, bias):
    model = _model("test_sed")
    with torch.no_grad():
        model.head.cla.bias.fill_(bias)  # frame logits near +-300: torch's logsigmoid stays finite
    windows = probe_windows(SMALL, 2)
    path = export_onnx(model, tmp_path / "saturated.onnx", labels=LABELS, opset=17)
    actual, expected = _run(path, windows), torch_probabilities(model, windows)
    for key in expected:
        assert np.isfinite(actual[key]).all()
        np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=TOL)


def test_exported_front_end_matches_torch_features_on_half_silentprobe_windows():
    # White-box: the front end alone, exported as export_onnx does it. A window whose second half is zero padding
    # (the last window of a recording) mixes -100 dB frames with signal; the graph's standardisation must keep
    # ONNX Runtime's float32 reductions close to torch (one-pass mean after the max shift: 5e-5 off).
    import io
    import warnings

    import onnxruntime as ort

    features = FeatureConfig()  # the seed recipe: 128 mels x 313 frames per map
    rng = np.random.default_rng(3)
    windows = np.stack([signals.call_in_noise(rng=rng, duration=5.0, call_start=1.0, sample_rate=features.sample_rate)[0] for _ in range(2)])
    windows[:, features.clip_samples // 2 :] = 0.0
    model = _model("test_cnn", features)
    net = onnx_export._export_copy(model, 17)
    buffer = io.BytesIO()
    with onnx_export._ExportOps(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and legacy-exporter warnings
        torch.onnx.export(net.frontend, (torch.from_numpy(windows),), buffer, dynamo=False, opset_version=17, input_names=["waveform"])
    actual = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"waveform": windows})[0]
    with torch.no_grad():
        expected = model.frontend(torch.from_numpy(windows)).numpy()
    assert float(np.abs(actual - expected).max()) < 3e-5


def test_export_leaves_the_model_untouched(tmp_path):
    model = _model("test_crnn").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx", labels=LABELS, batch_size_hint=1)
    assert model.training and type(model.frontend.logmel).__name__ == "LogMel"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_graph_that_differs_from_torch_is_refused_and_not_written(tmp_path, monkeypatch):
    original = onnx_export._export_copy

    def shifted(model, opset, stft="auto"):
        net = original(model, opset, stft)
        with torch.no_grad():
            net.classifier.bias += 1e-3  # a small but real difference in every probability
        return net

    monkeypatch.setattr(onnx_export, "_export_copy", shifted)
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"m\.onnx: ONNX Runtime and torch differ by 2\.\d+e-04 on clipwise") as err:
        export_onnx(_model("test_cnn"), path, labels=LABELS)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    export_onnx(_model("test_cnn"), path, labels=LABELS, check=False)  # check=False skips the comparison
    assert path.is_file()


def test_bad_arguments_raise_parameter_error(tmp_path):
    model = _model("test_cnn")
    with pytest.raises(ParameterError, match="2 labels for a model with 3 outputs"):
        export_onnx(model, tmp_path / "m.onnx", labels=LabelSet(("a", "b")))
    with pytest.raises(ParameterError, match=r"m\.txt: an ONNX export must be written to a \.onnx file"):
        export_onnx(model, tmp_path / "m.txt", labels=LABELS)
    for opset in (12, 99, 17.0):
        with pytest.raises(ParameterError, match="opset must be an integer in 13"):
            export_onnx(model, tmp_path / "m.onnx", labels=LABELS, opset=opset)
    with pytest.raises(ParameterError, match="batch_size_hint"):
        export_onnx(model, tmp_path / "m.onnx", labels=LABELS, batch_size_hint=0)
    with pytest.raises(ParameterError, match="expected a birdcall model"):
        export_onnx(torch.nn.Linear(2, 3), tmp_path / "m.onnx", labels=LABELS)
    assert list(tmp_path.iterdir()) == []


def _plain_onnx(path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    onnx.save(onnx.helper.make_model(graph), str(path))
    return path


def test_files_without_birdcall_metadata_give_one_line_errors(tmp_path):
    plain = _plain_onnx(tmp_path / "plain.onnx")
    for opener in (read_export_info, lambda p: load_scorer(p, backend="onnx")):
        with pytest.raises(CheckpointError, match=r"plain\.onnx: exported model without birdcall metadata \(write it with `birdcall export`\)$"):
            opener(plain)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not a protobuf at all")
    with pytest.raises(CheckpointError, match=r"garbage\.onnx: not an ONNX model"):
        read_export_info(garbage)
    with pytest.raises(CheckpointError, match=r"garbage\.onnx: ONNX Runtime cannot load it"):
        load_scorer(garbage, backend="onnx")
    with pytest.raises(CheckpointError, match=r"none\.onnx: file not found"):
        read_export_info(tmp_path / "none.onnx")
    with pytest.raises(CheckpointError, match=r"m\.safetensors: not an exported birdcall model"):
        read_export_info(garbage.rename(tmp_path / "m.safetensors"))
    proto = onnx.load(str(plain))
    onnx.helper.set_model_props(proto, {"birdcall.format": "birdcall.onnx/99"})
    onnx.save(proto, str(plain))
    with pytest.raises(CheckpointError, match=r"unsupported export format 'birdcall.onnx/99'"):
        read_export_info(plain)
    onnx.helper.set_model_props(proto, {"birdcall.format": FORMAT, "labels": "{not json", "features": "{}", "model": "{}"})
    onnx.save(proto, str(plain))
    with pytest.raises(CheckpointError, match=r"plain\.onnx: malformed birdcall metadata \(JSONDecodeError"):
        read_export_info(plain)


def _with_labels(src, dest, codes, *, dynamic_outputs: bool = False):
    """A copy of the ONNX file ``src`` whose metadata lists ``codes`` (names dropped); with ``dynamic_outputs``,
    the last dimension of its ``clipwise`` output is made symbolic."""
    proto = onnx.load(str(src))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    props["labels"] = json.dumps({"codes": codes, "scientific_names": [], "common_names": []})
    onnx.helper.set_model_props(proto, props)
    if dynamic_outputs:
        (clipwise,) = [o for o in proto.graph.output if o.name == "clipwise"]
        clipwise.type.tensor_type.shape.dim[-1].dim_param = "num_species"
    onnx.save(proto, str(dest))
    return dest


@pytest.mark.parametrize("codes", [["erirub", "turmer", "sylatr", "extra"], ["erirub", "turmer"]], ids=["one_too_many", "one_too_few"])
def test_labels_that_do_not_match_the_graph_outputs_are_refused_when_the_file_is_opened(exported, tmp_path, codes, monkeypatch):
    import onnxruntime as ort

    path = _with_labels(exported["test_cnn"][1], tmp_path / "edited.onnx", codes)
    monkeypatch.setattr(ort.InferenceSession, "run", lambda *a, **k: pytest.fail("scored a model whose labels do not match"))
    message = rf"^{re.escape(str(path))}: {len(codes)} labels in its metadata for a graph with 3 outputs \('clipwise'\)$"
    for opener in (read_export_info, lambda p: load_scorer(p, backend="onnx"), lambda p: OnnxScorer(p, frontend="graph"),
                   lambda p: OnnxScorer(p, frontend="host")):  # fmt: skip
        with pytest.raises(CheckpointError, match=message):
            opener(path)


def test_the_output_size_is_checked_where_it_is_known(exported, tmp_path):
    path = _with_labels(exported["test_cnn"][1], tmp_path / "dynamic.onnx", ["a", "b", "c", "d"], dynamic_outputs=True)
    assert len(read_export_info(path)[0]) == 4  # the file declares no size: nothing to compare the labels with
    with pytest.raises(CheckpointError, match=r"4 labels in its metadata for a graph with 3 outputs"):
        OnnxScorer(path, frontend="graph")  # ONNX Runtime infers the size from the graph


@pytest.mark.parametrize(
    "labels, cause",
    [
        ({"codes": ["erirub", 2, "sylatr"]}, r"codes must be non-empty strings, got 2 at position 1"),
        ({"codes": ["erirub", "", "sylatr"]}, r"codes must be non-empty strings, got '' at position 1"),
        ({"codes": ["erirub", "erirub", "sylatr"]}, r"duplicate species codes \['erirub'\]"),
        ({"codes": "abc"}, r"codes must be a list, got str"),
    ],
)
def test_malformed_labels_in_the_metadata_name_the_file(exported, tmp_path, labels, cause):
    proto = onnx.load(str(exported["test_cnn"][1]))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, "labels": json.dumps(labels)})
    path = tmp_path / "bad_labels.onnx"
    onnx.save(proto, str(path))
    for opener in (read_export_info, lambda p: load_scorer(p, backend="onnx")):
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: malformed birdcall metadata \(ParameterError: LabelSet: {cause}"):
            opener(path)


def test_a_graph_without_a_clipwise_output_is_refused(exported, tmp_path):
    plain = onnx.load(str(_plain_onnx(tmp_path / "plain.onnx")))
    onnx.helper.set_model_props(plain, {p.key: p.value for p in onnx.load(str(exported["test_cnn"][1])).metadata_props})
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    for opener in (read_export_info, lambda p: load_scorer(p, backend="onnx")):
        with pytest.raises(CheckpointError, match=r"plain\.onnx: exported graph without a 'clipwise' output$"):
            opener(tmp_path / "plain.onnx")

def test_onnx_scorer_reads_labels_and_features_and_scores_like_torch(exported):
    model, path = exported["test_sed"]
    scorer = load_scorer(path, backend="onnx", threads=1)
    assert isinstance(scorer, OnnxScorer) and isinstance(scorer, Scorer)
    assert scorer.labels == LABELS and scorer.features == SMALL
    assert scorer.session.get_providers() == ["CPUExecutionProvider"]
    assert scorer.session.get_session_options().intra_op_num_threads == 1
    windows = probe_windows(SMALL, 5)
    scores = scorer(windows.astype(np.float64))  # any float input is cast to float32
    assert scores.dtype == np.float32 and scores.shape == (5, 3)
    np.testing.assert_allclose(scores, torch_probabilities(model, windows)["clipwise"], rtol=0, atol=TOL)
    assert scorer(np.zeros((0, SMALL.clip_samples), np.float32)).shape == (0, 3)
    with pytest.raises(ParameterError, match=r"expected \(batch, 32000\) windows \(1.0 s at 32000 Hz\), got shape \(2, 100\)"):
        scorer(np.zeros((2, 100), np.float32))


def test_load_scorer_exports_a_checkpoint_on_the_fly_and_rejects_wrong_files(tmp_path):
    model = _model("test_cnn")
    checkpoint = save_model(model, tmp_path / "m.safetensors", labels=LABELS)
    scorer = load_scorer(checkpoint, backend="onnx", threads=1)
    assert isinstance(scorer, OnnxScorer) and scorer.labels == LABELS and scorer.features == SMALL
    windows = probe_windows(SMALL, 4)
    with torch.no_grad():
        expected = torch.sigmoid(clip_logits(model(torch.from_numpy(windows)))).numpy()
    np.testing.assert_allclose(scorer(windows), expected, rtol=0, atol=TOL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # the temporary export is not kept here
    with pytest.raises(ParameterError, match=r"m\.xml: the onnx backend runs \.onnx files"):
        load_scorer(tmp_path / "m.xml", backend="onnx")
    with pytest.raises(ParameterError, match="threads must be a non-negative integer"):
        load_scorer(checkpoint, backend="onnx", threads=-1)


def test_check_windows_are_seeded_and_include_silence():
    windows = onnx_export.check_windows(SMALL)
    assert windows.dtype == np.float32 and windows.shape == (4, SMALL.clip_samples)
    assert not windows[0].any() and all(w.std() > 0 for w in windows[1:])
    np.testing.assert_array_equal(windows, onnx_export.check_windows(SMALL))


def test_mfcc_delta_channels_of_digital_silence_export(tmp_path):
    # MFCC deltas of digital silence are float rounding residue (~1e-7). Normalize floors the std at 1e-4, so
    # they standardise to ~0 instead of O(1) noise that no runtime reproduces; the export check (silence is one
    # of its windows) used to fail here.
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0, channels=("logmel", "mfcc_delta", "mfcc_delta2"))
    model = _model("test_sed", features)
    path = export_onnx(model, tmp_path / "m.onnx", labels=LABELS)
    silence = np.zeros((1, features.clip_samples), np.float32)
    assert np.abs(model.frontend(torch.from_numpy(silence)).numpy()).max() < 0.1  # was O(1) with the old +1e-6
    with torch.inference_mode():
        expected = torch.sigmoid(clip_logits(model(torch.from_numpy(silence)))).numpy()
    np.testing.assert_allclose(load_scorer(path, backend="onnx")(silence), expected, atol=1e-4)
