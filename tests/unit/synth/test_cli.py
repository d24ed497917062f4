"""`birdcall synth` through typer's CliRunner."""

from __future__ import annotations

import dataclasses
import inspect

import pandas as pd
from typer.testing import CliRunner

from birdcall.cli import app
from birdcall.cli import synth as cli_synth
from birdcall.synth import SynthConfig, make_dataset

runner = CliRunner()


def test_synth_command_writes_dataset_and_summary(tmp_path):
    out = tmp_path / "synth"
    args = ["synth", str(out), "--species", "3", "--seed", "4", "--clips-per-species", "2", "--background", "1",
            "--soundscapes", "1", "--soundscape-duration", "12", "--snr-db", "-5", "10",
            "--format", "flac"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "6 training clips" in text and "3 scored 5-s windows" in text
    taxonomy = pd.read_csv(out / "taxonomy.csv")
    assert len(taxonomy) == 3
    for code in taxonomy.species_code:
        assert code in result.output
    assert len(list((out / "train_audio").rglob("*.flac"))) == 6
    assert len(list((out / "background").glob("*.flac"))) == 1
    row_ids = pd.read_csv(out / "solution.csv").row_id.tolist()
    assert row_ids == ["soundscape_0001_5", "soundscape_0001_10", "soundscape_0001_15"]
    # the options reach make_dataset: same tables as the Python API with the same arguments
    api = make_dataset(tmp_path / "api", num_species=3, seed=4, clips_per_species=2, num_background=1,
                       num_soundscapes=1, soundscape_duration=12, snr_db=(-5, 10), audio_format="flac")  # fmt: skip
    for name in ("train_metadata.csv", "events.csv", "solution.csv", "soundscape_events.csv", "taxonomy.csv"):
        assert (api.root / name).read_text() == (out / name).read_text()

    again = runner.invoke(app, args)  # refuses to mix with an existing data set
    assert again.exit_code == 2 and "error:" in again.output and "overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_synth_overwrite_refuses_a_data_set_it_did_not_write(tmp_path):
    out = tmp_path / "birdclef"
    clip = out / "train_audio" / "eurrob1" / "XC1234.ogg"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"OggS real recording")
    (out / "train_metadata.csv").write_text("primary_label,filename\neurrob1,eurrob1/XC1234.ogg\n")
    result = runner.invoke(app, ["synth", str(out), "--species", "2", "--clips-per-species", "1", "--background", "0",
                                 "--soundscapes", "0", "--overwrite", "--quiet"])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: ") and "not written by `birdcall synth`" in lines[0]
    assert clip.read_bytes() == b"OggS real recording" and (out / "train_metadata.csv").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["train_audio", "train_metadata.csv"]

def test_synth_command_reports_bad_parameters(tmp_path):
    result = runner.invoke(app, ["synth", str(tmp_path / "x"), "--species", "0"])
    assert result.exit_code == 2
    assert "error:" in result.output and "num_species" in result.output
    assert not (tmp_path / "x").exists()
    assert runner.invoke(app, ["synth", str(tmp_path / "y"), "--format", "mp4"]).exit_code == 2


def test_cli_defaults_match_make_dataset():
    cli = {name: p.default.default for name, p in inspect.signature(cli_synth.synth).parameters.items()}
    api = {f.name: f.default for f in dataclasses.fields(SynthConfig)}
    api["overwrite"] = inspect.signature(make_dataset).parameters["overwrite"].default
    pairs = {"species": "num_species", "seed": "seed", "clips_per_species": "clips_per_species",
             "background": "num_background", "soundscapes": "num_soundscapes",
             "soundscape_duration": "soundscape_duration", "snr_db": "snr_db", "variation": "variation",
             "sample_rate": "sample_rate", "overwrite": "overwrite"}  # fmt: skip
    for cli_name, api_name in pairs.items():
        value = tuple(cli[cli_name]) if cli_name == "snr_db" else cli[cli_name]
        assert value == api[api_name], cli_name
    assert cli["audio_format"].value == api["audio_format"]


def test_help_lists_synth():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "synth" in result.output
