"""`birdcall train` and `birdcall predict` through the real typer app, on a tiny generated data set."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.cli import app
from birdcall.synth import make_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """``--config`` of TrainConfig's own defaults (without one, ``train`` trains the cpu_default recipe: 5 folds)."""
    from birdcall.config import to_yaml
    from birdcall.train import TrainConfig

    path = tmp_path_factory.mktemp("config") / "bare.yaml"
    to_yaml(TrainConfig(), path)
    return ["--config", str(path)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_dataset(root, num_species=3, seed=2, clips_per_species=4, num_background=2, num_soundscapes=1, soundscape_duration=20.0, audio_format="flac")
    return root


@pytest.fixture(scope="module")
def trained(data_dir, bare, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(run), "--quiet", *bare, "model=test_cnn", "epochs=2", "batch_size=4",
                                 "features.n_mels=32", "features.clip_duration=2.0", "threads=1"])
    assert result.exit_code == 0, result.output
    return run


def test_train_writes_run_folder_with_overrides_applied(trained):
    assert (trained / "best.safetensors").is_file() and (trained / "last.safetensors").is_file()
    config = (trained / "config.yaml").read_text()
    assert "n_mels: 32" in config and "model: test_cnn" in config and "epochs: 2" in config
    assert pd.read_csv(trained / "metrics.csv")["epoch"].tolist() == [1, 2]


@pytest.mark.integration
def test_predict_writes_every_window_and_reports_bad_files(trained, data_dir, tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_text("this is not audio")
    out = tmp_path / "sub.csv"
    result = runner.invoke(app, ["predict", "--model", str(trained / "best.safetensors"), "--out", str(out), "--quiet",
                                 str(data_dir / "soundscapes"), str(bad)])
    assert result.exit_code == 1, result.output  # partial success is not silent
    assert "broken.ogg" in result.output and "not an audio file" in result.output and "1 file(s) skipped" in result.output
    sub = pd.read_csv(out)
    stem = sorted((data_dir / "soundscapes").iterdir())[0].stem
    assert sub["row_id"].tolist() == [f"{stem}_{s}" for s in range(2, 21, 2)]  # 2-s clips of a 20-s recording
    assert list(sub.columns[1:]) == list(pd.read_csv(data_dir / "taxonomy.csv")["species_code"])


def test_bad_data_dir_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert "error:" in result.output and "train_metadata.csv: file not found" in result.output


def test_bad_override_is_one_line_error(data_dir, tmp_path):
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(tmp_path / "run"), "--quiet", "epochz=3"])
    assert result.exit_code == 2 and "unknown key" in result.output


TINY = ["model=test_cnn", "epochs=1", "batch_size=4", "features.n_mels=32", "features.clip_duration=2.0", "threads=1"]


def test_train_refuses_a_folder_holding_a_run_and_bad_values(trained, data_dir, bare):
    before = (trained / "train_state.pt").stat().st_mtime_ns
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(trained), "--quiet", *bare, *TINY])
    assert result.exit_code == 2 and "already holds a training run" in result.output and "--overwrite" in result.output
    assert (trained / "train_state.pt").stat().st_mtime_ns == before
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(trained), "--quiet", "--resume", "--overwrite"])
    assert result.exit_code == 2 and "choose one" in result.output
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(trained), "--quiet", "grad_clip=-1"])
    assert result.exit_code == 2 and "TrainConfig.grad_clip must be >= 0" in result.output


def test_train_reports_a_corrupt_clip_or_skips_it_and_overwrite_replaces_a_run(data_dir, bare, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    clip = min((data / "train_audio").rglob("*.flac"))
    clip.write_bytes(clip.read_bytes()[:300])
    name = clip.relative_to(data / "train_audio").as_posix()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--out", str(run), "--quiet", *bare, *TINY])
    assert result.exit_code == 2 and f"({name}): cannot decode audio" in result.output and "use skip_bad" in result.output
    assert not run.exists()
    result = runner.invoke(app, ["train", str(data), "--out", str(run), "--quiet", "--skip-bad", *bare, *TINY])
    assert result.exit_code == 0, result.output
    assert "skipped train_metadata.csv row" in result.output and "1 bad row(s)/clip(s) skipped" in result.output
    (run / "notes.txt").write_text("kept")
    result = runner.invoke(app, ["train", str(data), "--out", str(run), "--quiet", "--skip-bad", "--overwrite", *bare, *TINY, "lr=0.002"])
    assert result.exit_code == 0, result.output
    assert "lr: 0.002" in (run / "config.yaml").read_text() and (run / "notes.txt").read_text() == "kept"


@pytest.mark.integration
def test_resume_without_a_recipe_continues_with_the_runs_own_config(data_dir, bare, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(run), "--quiet", *bare, *TINY])
    assert result.exit_code == 0, result.output
    config = (run / "config.yaml").read_text()
    # no --recipe, no --config: not cpu_default (5 folds, another model) but the config the run was started with
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(run), "--quiet", "--resume"])
    assert result.exit_code == 0, result.output
    assert "config differs" not in result.output and not (run / "fold0").exists()
    assert (run / "config.yaml").read_text() == config
    # an explicit recipe is still compared with the run's config, and refused
    result = runner.invoke(app, ["train", str(data_dir), "--out", str(run), "--quiet", "--resume", "--recipe", "cpu_default"])
    assert result.exit_code == 2, result.output
