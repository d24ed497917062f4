"""Model files whose ``birdcall`` header is broken or disagrees with the weights: one-line CheckpointErrors at load."""

from __future__ import annotations

import json
import re

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from birdcall.data import LabelSet
from birdcall.errors import CheckpointError
from birdcall.features import FeatureConfig
from birdcall.infer.scorer import load_scorer
from birdcall.models import create_model, load_model, read_model_info, save_model

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("aaa", "bbb", "ccc"), ("A a", "B b", "C c"), ("Ay", "Bee", "Cee"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real tiny model file (test_cnn, 3 outputs) and its header as a dict."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("test_cnn", num_classes=len(LABELS), features=SMALL)
    path = save_model(model, tmp_path_factory.mktemp("model") / "good.safetensors", labels=LABELS)
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()["birdcall"])
    return path, header


def _with_header(saved, dest, text: str):
    """The weights of ``saved`` written to ``dest`` with ``text`` as the birdcall header."""
    save_file(load_file(str(saved[0])), str(dest), metadata={"birdcall": text})
    return dest


def _edited(header: dict, **changes) -> str:
    edited = json.loads(json.dumps(header))
    for key, value in changes.items():
        if value is None:
            edited.pop(key, None)
        else:
            edited[key] = value
    return json.dumps(edited)


def _raises_one_line(opener, path, cause: str):
    with pytest.raises(CheckpointError) as info:
        opener(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert re.search(cause, message), message
    return message


def _bad_headers(header):
    labels = header["labels"]
    return {
        "not_json": ("{not json", r"birdcall metadata is not valid JSON"),
        "a_list": ("[1, 2]", r"must be a JSON object, got list"),
        "no_labels": (_edited(header, labels=None), r"without 'labels'"),
        "no_model": (_edited(header, model=None), r"without 'model'"),
        "no_features": (_edited(header, features=None), r"without 'features'"),
        "labels_a_list": (_edited(header, labels=["aaa", "bbb", "ccc"]), r"'labels' must be a JSON object, got list"),
        "model_a_string": (_edited(header, model="test_cnn"), r"'model' must be a JSON object, got str"),
        "features_null": (json.dumps({**header, "features": None}), r"'features' must be a JSON object, got NoneType"),
        "extra_a_list": (_edited(header, extra=[1]), r"'extra' must be a JSON object"),
        "unknown_feature_key": (_edited(header, features={**header["features"], "n_mel": 3}), r"malformed 'features'.*unknown key"),
        "model_without_classes": (_edited(header, model={k: v for k, v in header["model"].items() if k != "num_classes"}), r"malformed 'model'.*num_classes"),
        "codes_missing": (_edited(header, labels={"common_names": []}), r"malformed 'labels'.*no 'codes'"),
        "codes_a_string": (_edited(header, labels={**labels, "codes": "abc"}), r"malformed 'labels'.*codes must be a list"),
        "duplicate_codes": (_edited(header, labels={**labels, "codes": ["aaa", "aaa", "ccc"]}), r"malformed 'labels'.*duplicate species codes \['aaa'\]"),
        "non_string_code": (_edited(header, labels={**labels, "codes": ["aaa", 2, "ccc"]}), r"malformed 'labels'.*non-empty strings, got 2 at position 1"),
        "empty_code": (_edited(header, labels={**labels, "codes": ["aaa", "", "ccc"]}), r"malformed 'labels'.*non-empty strings, got '' at position 1"),
        "names_not_strings": (_edited(header, labels={**labels, "common_names": ["Ay", None, "Cee"]}), r"common_names must be strings"),
        "one_label_too_many": (_edited(header, labels={"codes": ["aaa", "bbb", "ccc", "ddd"]}), r"4 labels for a model with 3 outputs$"),
        "one_label_too_few": (_edited(header, labels={"codes": ["aaa", "bbb"]}), r"2 labels for a model with 3 outputs$"),
    }


BAD = ["not_json", "a_list", "no_labels", "no_model", "no_features", "labels_a_list", "model_a_string", "features_null", "extra_a_list",
       "unknown_feature_key", "model_without_classes", "codes_missing", "codes_a_string", "duplicate_codes", "non_string_code", "empty_code",
       "names_not_strings", "one_label_too_many", "one_label_too_few"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_a_bad_header_is_a_one_line_checkpoint_error_naming_the_file(saved, tmp_path, case):
    text, cause = _bad_headers(saved[1])[case]
    path = _with_header(saved, tmp_path / f"{case}.safetensors", text)
    for opener in (read_model_info, load_model, lambda p: load_scorer(p, backend="torch")):
        _raises_one_line(opener, path, cause)


def test_the_bad_header_list_is_complete(saved):
    assert sorted(_bad_headers(saved[1])) == sorted(BAD)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_a_label_too_many_is_refused_before_an_on_the_fly_export(saved, tmp_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    path = _with_header(saved, tmp_path / "m.safetensors", _edited(saved[1], labels={"codes": ["aaa", "bbb", "ccc", "ddd"]}))
    _raises_one_line(lambda p: load_scorer(p, backend=backend), path, r"4 labels for a model with 3 outputs$")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_header_labels_agree_with_the_built_model(saved, tmp_path, monkeypatch):
    """Even when the header's num_classes is consistent, load_model compares the labels with the model it built."""
    from birdcall.models import io as model_io

    monkeypatch.setattr(model_io, "_check_header", lambda p, text: json.loads(text))  # skip the header's own check
    path = _with_header(saved, tmp_path / "m.safetensors", _edited(saved[1], labels={"codes": ["aaa", "bbb", "ccc", "ddd"]}))
    _raises_one_line(load_model, path, r"4 labels for a model with 3 outputs$")


def test_an_unknown_architecture_is_a_checkpoint_error(saved, tmp_path):
    path = _with_header(saved, tmp_path / "m.safetensors", _edited(saved[1], model={**saved[1]["model"], "backbone": "no_such_net"}))
    _raises_one_line(load_model, path, r"cannot build the described model \(.*no_such_net")


def test_a_good_file_still_loads(saved):
    model, labels, info = load_model(saved[0])
    assert labels == LABELS and model.num_classes == 3 and read_model_info(saved[0]) == info
