import numpy as np
import pandas as pd
import pytest

from birdcall.data import LabelSet
from birdcall.errors import DataError, ParameterError
from birdcall.infer import DETECTION_COLUMNS, empty_detections, read_species_list, to_detections

# Scores are multiples of 1/16 so float32 holds them exactly and the expected tables can be written out.
LABELS = LabelSet(
    ("erirub", "turmer", "parmaj", "fricoe"),
    scientific_names=("Erithacus rubecula", "Turdus merula", "Parus major", "Fringilla coelebs"),
    common_names=("European Robin", "Eurasian Blackbird", "Great Tit", "Common Chaffinch"),
)
SCI = dict(zip(LABELS.codes, LABELS.scientific_names))
COMMON = dict(zip(LABELS.codes, LABELS.common_names))


@pytest.fixture
def scores():
    """2 files, 3 windows, 4 species; rows not in output order, columns not in LabelSet order, one tie."""
    index = pd.MultiIndex.from_tuples(
        [("/rec/b.wav", 5.0, 10.0), ("/rec/b.wav", 0.0, 5.0), ("/rec/a.wav", 0.0, 5.0)], names=["file", "start_time", "end_time"]
    )
    values = np.array(
        [
            # turmer erirub fricoe  parmaj
            [0.125, 0.75, 0.5, 0.0625],  # b 5-10
            [0.875, 0.25, 0.0, 0.5],  # b 0-5
            [0.375, 0.375, 0.625, 0.0],  # a 0-5: turmer and erirub tie
        ],
        dtype=np.float32,
    )
    return pd.DataFrame(values, index=index, columns=["turmer", "erirub", "fricoe", "parmaj"])


def expected(rows, *, names=True):
    """Detection table from ``(file, start, end, code, confidence)`` tuples, names looked up by hand."""
    return pd.DataFrame(
        {
            "file": pd.array([r[0] for r in rows], dtype="str"),
            "start_time": np.array([r[1] for r in rows], dtype=np.float64),
            "end_time": np.array([r[2] for r in rows], dtype=np.float64),
            "code": pd.array([r[3] for r in rows], dtype="str"),
            "scientific_name": pd.array([SCI[r[3]] if names else "" for r in rows], dtype="str"),
            "common_name": pd.array([COMMON[r[3]] if names else "" for r in rows], dtype="str"),
            "confidence": np.array([r[4] for r in rows], dtype=np.float32),
        }
    )


A, B = "/rec/a.wav", "/rec/b.wav"


def test_default_threshold_names_and_sort_order(scores):
    got = to_detections(scores, labels=LABELS)
    want = expected(
        [
            (A, 0.0, 5.0, "fricoe", 0.625),
            (A, 0.0, 5.0, "turmer", 0.375),  # tie with erirub: score-column order
            (A, 0.0, 5.0, "erirub", 0.375),
            (B, 0.0, 5.0, "turmer", 0.875),
            (B, 0.0, 5.0, "parmaj", 0.5),
            (B, 0.0, 5.0, "erirub", 0.25),
            (B, 5.0, 10.0, "erirub", 0.75),
            (B, 5.0, 10.0, "fricoe", 0.5),
            (B, 5.0, 10.0, "turmer", 0.125),  # 0.0625 (parmaj) is below the default 0.1
        ]
    )
    assert got.columns.tolist() == list(DETECTION_COLUMNS)
    pd.testing.assert_frame_equal(got, want)  # also checks dtypes and the fresh RangeIndex


def test_threshold_keeps_scores_equal_to_it(scores):
    got = to_detections(scores, labels=LABELS, min_confidence=0.5)
    want = expected(
        [
            (A, 0.0, 5.0, "fricoe", 0.625),
            (B, 0.0, 5.0, "turmer", 0.875),
            (B, 0.0, 5.0, "parmaj", 0.5),
            (B, 5.0, 10.0, "erirub", 0.75),
            (B, 5.0, 10.0, "fricoe", 0.5),
        ]
    )
    pd.testing.assert_frame_equal(got, want)


def test_top_k_keeps_the_best_per_window(scores):
    got = to_detections(scores, labels=LABELS, top_k=1)
    want = expected([(A, 0.0, 5.0, "fricoe", 0.625), (B, 0.0, 5.0, "turmer", 0.875), (B, 5.0, 10.0, "erirub", 0.75)])
    pd.testing.assert_frame_equal(got, want)


def test_top_k_breaks_ties_by_score_column_order(scores):
    got = to_detections(scores, labels=LABELS, top_k=2)
    a = got[got["file"] == A]
    assert a["code"].tolist() == ["fricoe", "turmer"]  # turmer and erirub tie at 0.375; turmer's column is first
    assert a["confidence"].tolist() == [0.625, 0.375]


def test_top_k_never_adds_species_below_the_threshold(scores):
    got = to_detections(scores, labels=LABELS, min_confidence=0.3, top_k=3)
    want = expected(
        [
            (A, 0.0, 5.0, "fricoe", 0.625),
            (A, 0.0, 5.0, "turmer", 0.375),
            (A, 0.0, 5.0, "erirub", 0.375),
            (B, 0.0, 5.0, "turmer", 0.875),  # only two pass 0.3 here: top_k does not add erirub (0.25)
            (B, 0.0, 5.0, "parmaj", 0.5),
            (B, 5.0, 10.0, "erirub", 0.75),
            (B, 5.0, 10.0, "fricoe", 0.5),
        ]
    )
    pd.testing.assert_frame_equal(got, want)


def test_top_k_applies_after_exclude(scores):
    got = to_detections(scores, labels=LABELS, top_k=2, exclude=["turmer"])
    want = expected(
        [
            (A, 0.0, 5.0, "fricoe", 0.625),
            (A, 0.0, 5.0, "erirub", 0.375),
            (B, 0.0, 5.0, "parmaj", 0.5),  # turmer (0.875) is excluded, so the next two are kept
            (B, 0.0, 5.0, "erirub", 0.25),
            (B, 5.0, 10.0, "erirub", 0.75),
            (B, 5.0, 10.0, "fricoe", 0.5),
        ]
    )
    pd.testing.assert_frame_equal(got, want)


def test_include_keeps_only_listed_species(scores):
    got = to_detections(scores, labels=LABELS, min_confidence=0.3, include=["erirub", "parmaj"])
    want = expected([(A, 0.0, 5.0, "erirub", 0.375), (B, 0.0, 5.0, "parmaj", 0.5), (B, 5.0, 10.0, "erirub", 0.75)])
    pd.testing.assert_frame_equal(got, want)


def test_exclude_wins_over_include(scores):
    got = to_detections(scores, labels=LABELS, include={"erirub", "turmer"}, exclude=("turmer",))
    want = expected([(A, 0.0, 5.0, "erirub", 0.375), (B, 0.0, 5.0, "erirub", 0.25), (B, 5.0, 10.0, "erirub", 0.75)])
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("which", ["include", "exclude"])
def test_unknown_codes_are_listed(scores, which):
    with pytest.raises(ParameterError, match=r"\['nosuch', 'zzz'\]") as info:
        to_detections(scores, labels=LABELS, **{which: ["erirub", "zzz", "nosuch"]})
    assert which in str(info.value)


def test_names_empty_when_the_labelset_has_none(scores):
    got = to_detections(scores, labels=LabelSet(LABELS.codes), top_k=1)
    want = expected([(A, 0.0, 5.0, "fricoe", 0.625), (B, 0.0, 5.0, "turmer", 0.875), (B, 5.0, 10.0, "erirub", 0.75)], names=False)
    pd.testing.assert_frame_equal(got, want)


def test_nan_scores_are_never_detections():
    index = pd.MultiIndex.from_tuples([("x.wav", 0.0, 3.0)], names=["file", "start_time", "end_time"])
    scores = pd.DataFrame([[np.nan, 0.0]], index=index, columns=["erirub", "turmer"])
    got = to_detections(scores, labels=LABELS, min_confidence=0.0, top_k=1)
    assert got["code"].tolist() == ["turmer"]
    assert got["confidence"].tolist() == [0.0]


def test_nothing_passing_and_zero_row_scores_give_an_empty_table(scores):
    want = empty_detections()
    assert want.columns.tolist() == list(DETECTION_COLUMNS)
    assert want.dtypes.astype(str).tolist() == ["str", "float64", "float64", "str", "str", "str", "float32"]
    pd.testing.assert_frame_equal(to_detections(scores, labels=LABELS, min_confidence=1.0), want)
    no_files = pd.DataFrame(columns=list(LABELS.codes))  # what predict_files returns when every file failed
    pd.testing.assert_frame_equal(to_detections(no_files, labels=LABELS), want)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"include": "erirub"}, "include"),
    ],
)
def test_bad_arguments(scores, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        to_detections(scores, labels=LABELS, **kwargs)


def test_score_columns_must_be_labelset_codes(scores):
    with pytest.raises(ParameterError, match=r"\['blackbird'\]"):
        to_detections(scores.rename(columns={"turmer": "blackbird"}), labels=LABELS)


def test_index_needs_the_clip_levels(scores):
    with pytest.raises(ParameterError, match="start_time"):
        to_detections(scores.reset_index(level="start_time", drop=True), labels=LABELS)


def test_read_species_list(tmp_path):
    path = tmp_path / "species.txt"
    path.write_text("# my site\nerirub\n\n  turmer  # blackbird\n#parmaj\nerirub\nfricoe")
    codes = read_species_list(path)
    assert codes == ["erirub", "turmer", "fricoe"]
    index = pd.MultiIndex.from_tuples([("x.wav", 0.0, 1.0)], names=["file", "start_time", "end_time"])
    flat = pd.DataFrame([[0.5] * 4], index=index, columns=list(LABELS.codes))
    assert to_detections(flat, labels=LABELS, include=codes)["code"].tolist() == ["erirub", "turmer", "fricoe"]


def test_read_species_list_missing_file(tmp_path):
    path = tmp_path / "nope" / "species.txt"
    with pytest.raises(DataError) as info:
        read_species_list(path)
    message = str(info.value)
    assert str(path) in message and "not found" in message and "\n" not in message
