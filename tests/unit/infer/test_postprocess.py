import dataclasses

import numpy as np
import pandas as pd
import pytest

from birdcall.config import from_dict, to_dict
from birdcall.errors import ParameterError
from birdcall.infer import PostprocessConfig, file_level_boost, postprocess, smooth_neighbours


def _table(rows, columns: dict, dtype=np.float32):
    index = pd.MultiIndex.from_tuples(rows, names=["file", "start_time", "end_time"])
    return pd.DataFrame({k: np.asarray(v, dtype=dtype) for k, v in columns.items()}, index=index)


# --- file_level_boost ---------------------------------------------------------------------------------------


def _boost_table():
    rows = [("x.ogg", 0.0, 5.0), ("y.ogg", 0.0, 5.0), ("x.ogg", 5.0, 10.0), ("x.ogg", 10.0, 15.0), ("y.ogg", 5.0, 10.0)]
    return _table(rows, {"A": [0.7, 0.5, 0.97, 0.2, 0.4], "B": [0.95, 0.1, 0.3, 0.2, 0.96]})


def test_file_level_boost_hand_made():
    scores = _boost_table()
    out = file_level_boost(scores, threshold=0.96, factor=1.5)
    assert out.index.equals(scores.index) and out.columns.tolist() == ["A", "B"]
    assert (out.dtypes == np.float32).all()
    # x.ogg: A reaches 0.97 -> x1.5 capped at 1 (0.7 -> 1.0, 0.97 -> 1.0, 0.2 -> 0.3); B peaks at 0.95 -> unchanged
    # y.ogg: A peaks at 0.5 -> unchanged; B reaches 0.96 (float32 0.96 counts as >= 0.96) -> 0.1 -> 0.15, 0.96 -> 1.0
    np.testing.assert_allclose(out["A"], np.float32([1.0, 0.5, 1.0, 0.3, 0.4]), rtol=1e-6)
    np.testing.assert_allclose(out["B"], np.float32([0.95, 0.15, 0.3, 0.2, 1.0]), rtol=1e-6)
    np.testing.assert_array_equal(scores["A"], np.float32([0.7, 0.5, 0.97, 0.2, 0.4]))  # input untouched


def test_file_level_boost_below_threshold_everywhere_is_identity():
    scores = _boost_table()
    pd.testing.assert_frame_equal(file_level_boost(scores, threshold=0.99), scores)


@pytest.mark.parametrize(("kwargs", "message"), [({"factor": 0.5}, "factor"), ({"threshold": float("nan")}, "threshold")])
def test_file_level_boost_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        file_level_boost(_boost_table(), **kwargs)


def test_file_level_boost_needs_a_file_level():
    with pytest.raises(ParameterError, match="file"):
        file_level_boost(pd.DataFrame({"A": [0.99]}))


# --- smooth_neighbours --------------------------------------------------------------------------------------


def test_smooth_neighbours_hand_made_three_windows_out_of_order():
    # rows are not in start_time order and another file is interleaved
    rows = [("f.ogg", 5.0, 10.0), ("g.ogg", 0.0, 5.0), ("f.ogg", 10.0, 15.0), ("f.ogg", 0.0, 5.0)]
    scores = _table(rows, {"A": [0.8, 0.9, 0.4, 0.0], "B": [1.0, 0.3, 0.0, 0.0]})
    out = smooth_neighbours(scores)  # (0.25, 0.5, 0.25)
    assert out.index.equals(scores.index) and out.columns.tolist() == ["A", "B"]
    assert (out.dtypes == np.float32).all()
    # f.ogg in time order: A = [0.0, 0.8, 0.4], B = [0.0, 1.0, 0.0]
    # first: (0.5*self + 0.25*next) / 0.75; middle: 0.25*prev + 0.5*self + 0.25*next; last: (0.25*prev + 0.5*self) / 0.75
    a_first, a_mid, a_last = (0.5 * 0.0 + 0.25 * 0.8) / 0.75, 0.25 * 0.0 + 0.5 * 0.8 + 0.25 * 0.4, (0.25 * 0.8 + 0.5 * 0.4) / 0.75
    b_first, b_mid, b_last = 0.25 / 0.75, 0.5, 0.25 / 0.75
    np.testing.assert_allclose(out["A"], [a_mid, 0.9, a_last, a_first], rtol=1e-6)  # g.ogg (one window) unchanged
    np.testing.assert_allclose(out["B"], [b_mid, 0.3, b_last, b_first], rtol=1e-6)


def test_smooth_neighbours_asymmetric_weights():
    rows = [("f.ogg", 0.0, 5.0), ("f.ogg", 5.0, 10.0), ("f.ogg", 10.0, 15.0)]
    scores = _table(rows, {"A": [0.2, 0.6, 1.0]}, dtype=np.float64)
    out = smooth_neighbours(scores, weights=(1.0, 2.0, 0.0))  # previous and self only
    np.testing.assert_allclose(out["A"], [0.2, (0.2 + 1.2) / 3, (0.6 + 2.0) / 3])
    assert out["A"].dtype == np.float64
    only_next = smooth_neighbours(scores, weights=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(only_next["A"], [0.6, 1.0, 1.0])  # the last window has nothing left: unchanged


def test_smooth_neighbours_single_window_and_empty_tables():
    one = _table([("f.ogg", 0.0, 5.0)], {"A": [0.3]})
    pd.testing.assert_frame_equal(smooth_neighbours(one, weights=(0.3, 0.1, 0.6)), one)
    empty = one.iloc[:0]
    pd.testing.assert_frame_equal(smooth_neighbours(empty), empty)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.25, -0.5, 0.25), (0.0, 0.0, 0.0), (0.1, float("inf"), 0.1), "abc"])
def test_smooth_neighbours_rejects_bad_weights(weights):
    rows = [("f.ogg", 0.0, 5.0), ("f.ogg", 5.0, 10.0)]
    with pytest.raises(ParameterError, match="weights"):
        smooth_neighbours(_table(rows, {"A": [0.1, 0.2]}), weights=weights)


# --- postprocess --------------------------------------------------------------------------------------------


def test_postprocess_smooths_then_boosts():
    rows = [("f.ogg", 0.0, 5.0), ("f.ogg", 5.0, 10.0), ("f.ogg", 10.0, 15.0)]
    scores = _table(rows, {"A": [0.6, 0.99, 0.6]}, dtype=np.float64)
    config = PostprocessConfig(boost_threshold=0.9, boost_factor=2.0, smooth_weights=(0.25, 0.5, 0.25))
    out = postprocess(scores, config)
    # smoothed: [(0.3 + 0.2475)/0.75, 0.15 + 0.495 + 0.15, same] = [0.73, 0.795, 0.73]; max 0.795 < 0.9: no boost
    # (boosting first would have seen 0.99, doubled and capped everything to 1.0, and smoothing would keep 1.0)
    np.testing.assert_allclose(out["A"], [0.73, 0.795, 0.73])
    boosted = postprocess(scores, dataclasses.replace(config, boost_threshold=0.7))
    np.testing.assert_allclose(boosted["A"], [1.0, 1.0, 1.0])
    low = _table(rows, {"A": [0.3, 0.99, 0.3]}, dtype=np.float64)
    # smoothed: [(0.15 + 0.2475)/0.75, 0.075 + 0.495 + 0.075, same] = [0.53, 0.645, 0.53] -> x2 capped, or x1.5
    # (boost then smooth would give [0.45, 1.0, 0.45] -> [0.6333, 0.725, 0.6333])
    np.testing.assert_allclose(postprocess(low, dataclasses.replace(config, boost_threshold=0.6))["A"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(
        postprocess(low, dataclasses.replace(config, boost_threshold=0.6, boost_factor=1.5))["A"], [0.795, 0.9675, 0.795]
    )


def test_postprocess_steps_can_be_disabled():
    scores = _boost_table()
    pd.testing.assert_frame_equal(postprocess(scores, PostprocessConfig()), scores)
    pd.testing.assert_frame_equal(postprocess(scores, PostprocessConfig(boost_threshold=0.96)), file_level_boost(scores))
    weights = (0.1, 0.8, 0.1)
    pd.testing.assert_frame_equal(
        postprocess(scores, PostprocessConfig(smooth_weights=weights)), smooth_neighbours(scores, weights=weights)
    )


def test_postprocess_config_validates_and_round_trips():
    with pytest.raises(ParameterError, match="weights"):
        PostprocessConfig(smooth_weights=(1.0, 2.0))
    with pytest.raises(ParameterError, match="factor"):
        PostprocessConfig(boost_threshold=0.9, boost_factor=0.0)
    config = PostprocessConfig(boost_threshold=0.9, smooth_weights=[1, 2, 1])
    assert config.smooth_weights == (1.0, 2.0, 1.0)
    assert from_dict(PostprocessConfig, to_dict(config)) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.boost_factor = 2.0
    with pytest.raises(ParameterError, match="PostprocessConfig"):
        postprocess(_boost_table(), {"boost_threshold": 0.9})
