import math

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import CheckpointError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer import EnsembleScorer, Scorer, TorchScorer, align_labels, combine, load_ensemble, load_scorer, predict_file
from birdcall.infer.long_recording import WindowSpec
from birdcall.testing.signals import tone, white_noise

FEATURES = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0)


def _index(rows):
    return pd.MultiIndex.from_tuples(rows, names=["file", "start_time", "end_time"])


ROWS = [("a.ogg", 0.0, 5.0), ("a.ogg", 5.0, 10.0), ("b.ogg", 0.0, 5.0), ("b.ogg", 5.0, 10.0)]


def _frame(columns: dict, rows=ROWS, dtype=np.float32):
    return pd.DataFrame({k: np.asarray(v, dtype=dtype) for k, v in columns.items()}, index=_index(rows))


# --- align_labels -------------------------------------------------------------------------------------------


def test_align_labels_is_the_union_in_first_seen_order_with_names():
    first = LabelSet(("a", "b"), scientific_names=("A a", "B b"), common_names=("Ay", "Bee"))
    second = LabelSet(("b", "c"), scientific_names=("B other", "C c"))
    third = LabelSet(("d", "a"))
    labels = align_labels([first, second, third])
    assert labels.codes == ("a", "b", "c", "d")
    assert labels.scientific_names == ("A a", "B b", "C c", "")  # b keeps the first name seen
    assert labels.common_names == ("Ay", "Bee", "", "")


def test_align_labels_without_names_has_none():
    labels = align_labels([LabelSet(("b", "c")), LabelSet(("a", "b"))])
    assert labels.codes == ("b", "c", "a")
    assert labels.scientific_names == () and labels.common_names == ()


def test_align_labels_rejects_empty_and_non_labelsets():
    with pytest.raises(ParameterError, match="at least one"):
        align_labels([])
    with pytest.raises(ParameterError, match="member 1"):
        align_labels([LabelSet(("a",)), ("b",)])


# --- combine ------------------------------------------------------------------------------------------------


def test_combine_mean_aligns_columns_by_code():
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4], "b": [0.5, 0.5, 0.0, 1.0]})
    two = _frame({"c": [0.9, 0.8, 0.7, 0.6], "b": [0.1, 0.3, 0.4, 0.0]})
    out = combine([one, two])
    assert out.columns.tolist() == ["a", "b", "c"]
    assert out.index.equals(one.index) and out.index.names == ["file", "start_time", "end_time"]
    assert (out.dtypes == np.float32).all()
    np.testing.assert_allclose(out["a"], [0.1, 0.2, 0.3, 0.4], rtol=1e-6)  # only member one has a
    np.testing.assert_allclose(out["b"], [0.3, 0.4, 0.2, 0.5], rtol=1e-6)
    np.testing.assert_allclose(out["c"], [0.9, 0.8, 0.7, 0.6], rtol=1e-6)


def test_combine_weights_are_normalised_and_renormalised_per_species():
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4], "b": [0.5, 0.5, 0.0, 1.0]})
    two = _frame({"b": [0.1, 0.3, 0.4, 0.0]})
    out = combine([one, two], weights=[3.0, 1.0])
    np.testing.assert_allclose(out["b"], [0.4, 0.45, 0.1, 0.75], rtol=1e-6)  # 0.75 * one + 0.25 * two
    np.testing.assert_allclose(out["a"], [0.1, 0.2, 0.3, 0.4], rtol=1e-6)  # not 0.75 * a
    pd.testing.assert_frame_equal(combine([one, two], weights=[6, 2]), out)


def test_combine_power_mean():
    one = _frame({"a": [0.2, 0.0, 1.0, 0.5]})
    two = _frame({"a": [0.8, 0.6, 1.0, 0.5]})
    out = combine([one, two], method="power")
    expected = [math.sqrt(0.34), math.sqrt(0.18), 1.0, 0.5]  # sqrt((0.04 + 0.64) / 2), sqrt(0.36 / 2)
    np.testing.assert_allclose(out["a"], expected, rtol=1e-6)
    cubic = combine([one, two], method="power", power=3.0, weights=[1, 3])
    np.testing.assert_allclose(cubic["a"].iloc[0], (0.25 * 0.008 + 0.75 * 0.512) ** (1 / 3), rtol=1e-6)


def test_combine_rank_averages_ties_over_all_rows():
    one = _frame({"a": [0.1, 0.5, 0.5, 0.9], "b": [0.3, 0.3, 0.3, 0.3]})
    two = _frame({"a": [0.3, 0.2, 0.1, 0.0]})
    out = combine([one, two], method="rank")
    # one: ranks 1, 2.5, 2.5, 4 -> 0, 0.5, 0.5, 1; two: ranks 4, 3, 2, 1 -> 1, 2/3, 1/3, 0
    np.testing.assert_allclose(out["a"], [0.5, 7 / 12, 5 / 12, 0.5], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [0.5, 0.5, 0.5, 0.5], rtol=1e-6)  # all tied


def test_combine_rank_of_a_single_row_is_one_half():
    one = _frame({"a": [0.9]}, rows=ROWS[:1])
    two = _frame({"a": [0.1]}, rows=ROWS[:1])
    np.testing.assert_allclose(combine([one, two], method="rank")["a"], [0.5])


def test_combine_keeps_float64_when_an_input_is_float64():
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4]}, dtype=np.float64)
    two = _frame({"a": [0.3, 0.2, 0.1, 0.0]})
    assert combine([one, two])["a"].dtype == np.float64


def test_combine_rejects_indexes_that_differ():
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4]})
    shorter = _frame({"a": [0.1, 0.2, 0.3]}, rows=ROWS[:3])
    with pytest.raises(ParameterError, match="frame 1 has 3 rows, frame 0 has 4"):
        combine([one, shorter])
    other = _frame({"a": [0.1, 0.2, 0.3, 0.4]}, rows=[*ROWS[:3], ("c.ogg", 5.0, 10.0)])
    with pytest.raises(ParameterError, match=r"frame 1 row 3 is \('c.ogg'"):
        combine([one, other])
    shuffled = _frame({"a": [0.1, 0.2, 0.3, 0.4]}, rows=[ROWS[1], ROWS[0], *ROWS[2:]])
    with pytest.raises(ParameterError, match="another order"):
        combine([one, shuffled])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1.0, -1.0]}, ">= 0"),
        ({"weights": [0.0, 0.0]}, "sum to zero"),
        ({"weights": [1.0]}, "expected 2 values"),
        ({"method": "median"}, "method must be one of"),
        ({"method": "power", "power": 0.0}, "power must be"),
    ],
)
def test_combine_rejects_bad_parameters(kwargs, message):
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(ParameterError, match=message):
        combine([one, one], **kwargs)


def test_combine_rejects_no_frames_and_species_only_from_zero_weight_members():
    with pytest.raises(ParameterError, match="at least one"):
        combine([])
    one = _frame({"a": [0.1, 0.2, 0.3, 0.4]})
    two = _frame({"a": [0.1, 0.2, 0.3, 0.4], "z": [0.0, 0.0, 0.0, 0.0]})
    with pytest.raises(ParameterError, match=r"\['z'\]"):
        combine([one, two], weights=[1.0, 0.0])


# --- EnsembleScorer -----------------------------------------------------------------------------------------


class FixedScorer:
    """Returns the same row for every window and records what it was given."""

    def __init__(self, codes, row, features=FEATURES):
        self.labels = LabelSet(tuple(codes))
        self.features = features
        self.row = np.asarray(row, dtype=np.float32)
        self.calls = []

    def __call__(self, windows):
        self.calls.append(windows)
        return np.tile(self.row, (len(windows), 1))


def test_ensemble_scorer_combines_fake_members():
    one, two = FixedScorer(["a", "b"], [0.2, 0.4]), FixedScorer(["b", "c"], [0.8, 0.6])
    ensemble = EnsembleScorer([one, two])
    assert isinstance(ensemble, Scorer)
    assert ensemble.labels.codes == ("a", "b", "c") and ensemble.features == FEATURES
    windows = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = ensemble(windows)
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_allclose(out, np.tile([0.2, 0.6, 0.6], (3, 1)), rtol=1e-6)
    for member in (one, two):
        np.testing.assert_array_equal(member.calls[0], windows)
    power = EnsembleScorer([one, two], method="power")(windows)
    np.testing.assert_allclose(power[0], [0.2, math.sqrt(0.4), 0.6], rtol=1e-6)
    weighted = EnsembleScorer([one, two], weights=[1, 3])(windows)
    np.testing.assert_allclose(weighted[0], [0.2, 0.7, 0.6], rtol=1e-6)  # b: 0.25 * 0.4 + 0.75 * 0.8


def test_ensemble_scorer_allows_other_feature_settings_but_not_other_windows():
    other_mels = FeatureConfig(n_mels=16, n_fft=256, hop_length=128, clip_duration=1.0)
    EnsembleScorer([FixedScorer(["a"], [0.1]), FixedScorer(["a"], [0.3], features=other_mels)])
    with pytest.raises(ParameterError, match="member 1 has sample_rate=16000, member 0 has 32000"):
        EnsembleScorer([FixedScorer(["a"], [0.1]), FixedScorer(["a"], [0.3], features=FeatureConfig(sample_rate=16_000, fmax=8000.0))])
    with pytest.raises(ParameterError, match="member 1 has clip_duration=5.0"):
        EnsembleScorer([FixedScorer(["a"], [0.1]), FixedScorer(["a"], [0.3], features=FeatureConfig())])


def test_ensemble_scorer_rejects_rank_and_bad_members():
    members = [FixedScorer(["a"], [0.1]), FixedScorer(["a"], [0.3])]
    with pytest.raises(ParameterError, match="combine"):
        EnsembleScorer(members, method="rank")
    with pytest.raises(ParameterError, match="at least one"):
        EnsembleScorer([])
    unlabelled = FixedScorer(["a"], [0.1])
    unlabelled.labels = None
    with pytest.raises(ParameterError, match="member 1 has no LabelSet"):
        EnsembleScorer([members[0], unlabelled])
    with pytest.raises(ParameterError, match="expected 2 values"):
        EnsembleScorer(members, weights=[1.0])


def test_ensemble_scorer_checks_member_output_shape():
    broken = FixedScorer(["a", "b"], [0.1])  # one column for two labels
    with pytest.raises(ParameterError, match=r"member 1 returned shape \(2, 1\), expected \(2, 2\)"):
        EnsembleScorer([FixedScorer(["a"], [0.1]), broken])(np.zeros((2, 4), np.float32))


def _tiny_model(num_classes, features=FEATURES):
    from birdcall.models import create_model

    return create_model("test_cnn", num_classes=num_classes, features=features)


def test_ensemble_scorer_of_torch_models_matches_combined_predictions(tmp_path, torch_seed, rng):
    one = TorchScorer(_tiny_model(2), labels=LabelSet(("a", "b")))
    two = TorchScorer(_tiny_model(2, FeatureConfig(n_mels=16, n_fft=256, hop_length=128, clip_duration=1.0)), labels=LabelSet(("c", "a")))
    ensemble = EnsembleScorer([one, two])
    windows = np.stack([tone(frequency_hz=f, duration=1.0) for f in (500.0, 2000.0, 6000.0)])
    expected = np.stack([one(windows)[:, 0] * 0.5 + two(windows)[:, 1] * 0.5, one(windows)[:, 1], two(windows)[:, 0]], axis=1)
    np.testing.assert_allclose(ensemble(windows), expected, rtol=1e-6, atol=1e-7)

    path = write_audio(tmp_path / "rec.wav", white_noise(rng=rng, duration=3.5, sample_rate=32_000), 32_000)
    kwargs = {"spec": WindowSpec(32_000, 1.0), "batch_size": 2}
    frames = [predict_file(s, path, labels=s.labels, **kwargs) for s in (one, two)]
    together = predict_file(ensemble, path, labels=ensemble.labels, **kwargs)
    assert len(together) == 4 and together.columns.tolist() == ["a", "b", "c"]
    pd.testing.assert_frame_equal(together, combine(frames), atol=1e-6)


# --- load_ensemble ------------------------------------------------------------------------------------------


def _save(path, codes, features=FEATURES):
    from birdcall.models import save_model

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(_tiny_model(len(codes), features), path, labels=LabelSet(tuple(codes)))


def test_load_ensemble_reads_the_folds_of_a_run_in_fold_order(tmp_path, torch_seed):
    run = tmp_path / "run"
    paths = [_save(run / "fold2" / "best.safetensors", ["a", "b"]), _save(run / "fold10" / "best.safetensors", ["c", "a"])]
    _save(run / "fold2" / "last.safetensors", ["z"])  # not a member
    ensemble = load_ensemble(run)
    assert ensemble.labels.codes == ("a", "b", "c")  # fold2 before fold10
    assert len(ensemble.scorers) == 2
    windows = np.stack([tone(frequency_hz=1000.0, duration=1.0), np.zeros(32_000, np.float32)])
    members = [load_scorer(p)(windows) for p in paths]
    expected = np.stack([(members[0][:, 0] + members[1][:, 1]) / 2, members[0][:, 1], members[1][:, 0]], axis=1)
    np.testing.assert_allclose(ensemble(windows), expected, rtol=1e-6, atol=1e-7)
    from_list = load_ensemble(paths[::-1], method="power")
    assert from_list.labels.codes == ("c", "a", "b") and from_list.method == "power"


def test_load_ensemble_single_model_run_and_single_file(tmp_path, torch_seed):
    path = _save(tmp_path / "run" / "best.safetensors", ["a", "b", "c"])
    windows = np.stack([tone(frequency_hz=3000.0, duration=1.0)])
    expected = load_scorer(path)(windows)
    for source in (tmp_path / "run", path, str(path)):
        ensemble = load_ensemble(source)
        assert len(ensemble.scorers) == 1 and ensemble.labels.codes == ("a", "b", "c")
        np.testing.assert_allclose(ensemble(windows), expected, rtol=1e-6)


def test_load_ensemble_errors(tmp_path):
    empty = tmp_path / "empty_run"
    (empty / "fold0").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"empty_run: no model in this folder"):
        load_ensemble(empty)
    with pytest.raises(ParameterError, match="at least one model"):
        load_ensemble([])
    with pytest.raises(CheckpointError, match="file not found"):
        load_ensemble([tmp_path / "missing.safetensors"])
    with pytest.raises(ParameterError, match="backend"):
        load_ensemble([tmp_path / "missing.safetensors"], backend="tensorrt")
