"""`birdcall pseudo-label` through the real typer app: two teachers into LABELS.parquet, the resumed rerun, the
licence note, skipped files (exit code 1) and refused options (exit code 2, one line)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.birdnet.model import BIRDNET_LICENSE, NON_COMMERCIAL_NOTE
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.infer.pseudo_labels import read_pseudo_labels
from birdcall.testing.signals import tone

runner = CliRunner()
RATE = 32_000
SMALL = {"n_mels": 32, "n_fft": 512, "hop_length": 256, "clip_duration": 1.0}


def save(path, seed, features, extra=None):
    import torch

    from birdcall.models import create_model, save_model

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = create_model("test_cnn", num_classes=2, features=features)
    torch.random.set_rng_state(state)
    return save_model(model, path, labels=LabelSet(("aa", "bb")), extra=extra)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teachers")
    return {
        "cnn": save(folder / "cnn.safetensors", 1, FeatureConfig(**SMALL)),
        "birdnet_based": save(folder / "probe.safetensors", 2, FeatureConfig(sample_rate=16_000, fmax=8000.0, **SMALL),
                              extra={"backbone": {"name": "BirdNET", "license": BIRDNET_LICENSE}}),
        "long": save(folder / "long.safetensors", 3, FeatureConfig(**{**SMALL, "clip_duration": 2.0})),
    }


@pytest.fixture
def audio(tmp_path):
    folder = tmp_path / "unlabelled"
    (folder / "site2").mkdir(parents=True)
    write_audio(folder / "site1.wav", tone(frequency_hz=900.0, duration=2.5, sample_rate=RATE, amplitude=0.3), RATE)
    write_audio(folder / "site2" / "rec.wav", tone(frequency_hz=1500.0, duration=1.0, sample_rate=RATE, amplitude=0.3), RATE)
    return folder


def pseudo_label(*args):
    return runner.invoke(app, ["pseudo-label", "--quiet", *map(str, args)])


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_two_teachers_write_labels_and_a_rerun_resumes(teachers, audio, tmp_path):
    out = tmp_path / "labels.parquet"
    args = ["--teacher", teachers["cnn"], "--teacher", teachers["birdnet_based"], "--out", out, "--batch-size", "4", audio]
    result = pseudo_label(*args)
    assert result.exit_code == 0, result.output
    assert f"2 files, 4 windows, 0 skipped -> {out}" in result.output
    assert f"note: {NON_COMMERCIAL_NOTE}" in " ".join(result.output.split())  # a BirdNET-based teacher
    labels = read_pseudo_labels(out, audio_root=audio)
    assert labels.files == (audio / "site1.wav",) * 3 + (audio / "site2" / "rec.wav",)
    assert labels.probs.shape == (4, 2) and [t["license"] for t in labels.metadata["teachers"]] == [None, BIRDNET_LICENSE]

    before = pd.read_parquet(out)
    again = pseudo_label(*args)
    assert again.exit_code == 0 and "2 file(s) were done by an earlier run" in again.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), before)

    ranked = pseudo_label(*args[:-1], "--method", "rank", audio)
    assert ranked.exit_code == 0, ranked.output
    assert not np.allclose(pd.read_parquet(out)[["aa", "bb"]].to_numpy(), before[["aa", "bb"]].to_numpy())


def test_an_unreadable_file_is_reported_and_exits_1(teachers, audio, tmp_path):
    (audio / "broken.wav").write_text("not audio")
    out = tmp_path / "labels.parquet"
    result = pseudo_label("--teacher", teachers["cnn"], "--out", out, audio)
    assert result.exit_code == 1
    assert f"skipped {audio / 'broken.wav'}: teacher 0: not an audio file" in result.output
    errors_csv = tmp_path / ".labels.parquet.parts" / "errors.csv"
    assert "3 files, 4 windows, 1 skipped" in result.output and f"1 file(s) skipped (listed in {errors_csv})" in result.output
    assert pd.read_parquet(out)["file"].unique().tolist() == ["site1.wav", "site2/rec.wav"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--teacher", "long"], "have different clip durations (1 s and 2 s)"),
        (["--method", "median"], "method must be one of ('mean', 'power', 'rank'), got 'median'"),
        (["--hop", "0"], "hop must be a finite number of seconds > 0"),
    ],
)
def test_refused_options_are_one_line_with_exit_code_2(teachers, audio, tmp_path, extra, message):
    extra = [str(teachers[e]) if e in teachers else e for e in extra]
    out = tmp_path / "labels.parquet"
    result = pseudo_label("--teacher", teachers["cnn"], *extra, "--out", out, audio)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert not out.exists()


def test_teacher_is_required(audio, tmp_path):
    result = pseudo_label("--out", tmp_path / "labels.parquet", audio)
    assert result.exit_code == 2 and "--teacher" in result.output
