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
