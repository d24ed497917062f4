import numpy as np
import pytest

from birdcall.data import LabelSet
from birdcall.errors import ParameterError


def test_encode_multi_hot_with_weights():
    labels = LabelSet(("aaa", "bbb", "ccc"))
    out = labels.encode([["bbb"], ["aaa", "ccc"], []], weights=[[1.0], [1.0, 0.5], []])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 1, 0], [1, 0, 0.5], [0, 0, 0]])


def test_round_trip_and_errors():
    labels = LabelSet(("a", "b"), ("A a", "B b"), ("Ay", "Bee"))
    assert LabelSet.from_dict(labels.to_dict()) == labels
    assert labels.index("b") == 1 and "a" in labels and "z" not in labels
    with pytest.raises(ParameterError, match="unknown species code 'z'"):
        labels.encode([["z"]])
    with pytest.raises(ParameterError, match="duplicate"):
        LabelSet(("a", "a"))
    with pytest.raises(ParameterError, match="scientific_names has 1 entries for 2 codes"):
        LabelSet(("a", "b"), ("A",))


@pytest.mark.parametrize(
    "data, message",
    [
        (["a", "b"], r"expected a mapping with 'codes', got list"),
        ({"common_names": ["A"]}, r"no 'codes'"),
        ({"codes": "ab"}, r"codes must be a list, got str"),  # would silently be the codes ('a', 'b')
        ({"codes": ["a", 1]}, r"codes must be non-empty strings, got 1 at position 1"),  # would silently be '1'
        ({"codes": ["a", ""]}, r"codes must be non-empty strings, got '' at position 1"),
        ({"codes": ["a", "  "]}, r"codes must be non-empty strings, got '  ' at position 1"),
        ({"codes": ["a", None]}, r"codes must be non-empty strings, got None"),
        ({"codes": ["a", "b"], "common_names": None}, r"common_names must be a list, got NoneType"),
        ({"codes": ["a", "b"], "scientific_names": ["A a", 3]}, r"scientific_names must be strings, got 3 at position 1"),
        ({"codes": ["a", "a\nb", "a"]}, r"duplicate species codes \['a'\]"),
    ],
)
def test_from_dict_rejects_malformed_mappings_with_one_line_errors(data, message):
    with pytest.raises(ParameterError, match=message) as info:
        LabelSet.from_dict(data)
    assert "\n" not in str(info.value)


def test_from_dict_keeps_names_and_ignores_unknown_keys():
    labels = LabelSet.from_dict({"codes": ["a", "b"], "common_names": ["Ay", "Bee"], "future_key": 1})
    assert labels == LabelSet(("a", "b"), common_names=("Ay", "Bee"))
    assert LabelSet.from_dict({"codes": ("a",)}) == LabelSet(("a",))
