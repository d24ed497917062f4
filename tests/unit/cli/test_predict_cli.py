"""`birdcall predict` through the real typer app: submission format, TTA, resume, shards, post-processing flags."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.audio import write_audio
from birdcall.cli import app
from birdcall.data.labels import LabelSet
from birdcall.features import FeatureConfig
from birdcall.testing.signals import tone

runner = CliRunner()
LABELS = LabelSet(("zz_last", "aa_first", "mm_mid"))  # not alphabetical: columns must follow the model
RATE = 32_000


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import torch

    from birdcall.models import create_model, save_model

    state = torch.random.get_rng_state()
    torch.manual_seed(1)
    model = create_model("test_cnn", num_classes=3, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    torch.random.set_rng_state(state)
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.safetensors", labels=LABELS)


@pytest.fixture
def audio(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    for name, seconds in [("site_B", 3.5), ("site_A", 2.0), ("site_C", 1.0)]:
        write_audio(folder / f"{name}.ogg", tone(frequency_hz=900.0, duration=seconds, sample_rate=RATE, amplitude=0.3), RATE)
    return folder


def predict(*args):
    return runner.invoke(app, ["predict", "--quiet", *map(str, args)])


@pytest.mark.integration
def test_submission_has_one_row_per_window_and_model_columns(model_path, audio, tmp_path):
    out = tmp_path / "sub.csv"
    result = predict("--model", model_path, "--out", out, "--tta=0,0.5,-0.5", "--batch-size", "4", audio)
    assert result.exit_code == 0, result.output
    assert "3 files, 7 windows, 0 skipped" in result.output
    sub = pd.read_csv(out)
    assert sub.columns.tolist() == ["row_id", "zz_last", "aa_first", "mm_mid"]
    assert sub["row_id"].tolist() == ["site_A_1", "site_A_2", "site_B_1", "site_B_2", "site_B_3", "site_B_4", "site_C_1"]
    values = sub[list(LABELS.codes)].to_numpy()
    assert np.all((values > 0) & (values < 1))

    plain = tmp_path / "plain.csv"
    assert predict("--model", model_path, "--out", plain, "--batch-size", "4", audio).exit_code == 0
    assert not np.allclose(pd.read_csv(plain)[list(LABELS.codes)].to_numpy(), values)  # TTA changed the scores

    again = predict("--model", model_path, "--out", out, "--tta=0,0.5,-0.5", "--batch-size", "4", audio)
    assert again.exit_code == 0 and "3 file(s) were done by an earlier run" in again.output
    pd.testing.assert_frame_equal(pd.read_csv(out), sub)
    assert (tmp_path / ".sub.csv.parts" / "manifest.jsonl").is_file()


def test_shards_into_one_csv_equal_one_run(model_path, audio, tmp_path):
    args = ["--model", model_path, "--batch-size", "1", audio]
    assert predict("--out", tmp_path / "one.csv", *args).exit_code == 0
    first = predict("--out", tmp_path / "sharded.csv", "--shard", "0/2", *args)
    assert first.exit_code == 0 and "2 files" in first.output and "shard 1/2" in first.output
    assert len(pd.read_csv(tmp_path / "sharded.csv")) < 7  # only what is done so far
    second = predict("--out", tmp_path / "sharded.csv", "--shard", "1/2", *args)
    assert second.exit_code == 0 and "1 files" in second.output and "incomplete" not in second.output
    assert (tmp_path / "sharded.csv").read_text() == (tmp_path / "one.csv").read_text()


def test_postprocess_flags_change_the_scores(model_path, audio, tmp_path):
    base = ["--model", model_path, "--batch-size", "1", audio]
    assert predict("--out", tmp_path / "raw.csv", *base).exit_code == 0
    assert predict("--out", tmp_path / "smooth.csv", "--smooth", "0.25,0.5,0.25", *base).exit_code == 0
    raw, smooth = pd.read_csv(tmp_path / "raw.csv"), pd.read_csv(tmp_path / "smooth.csv")
    codes = list(LABELS.codes)
    a = raw[raw["row_id"].str.startswith("site_A")][codes].to_numpy()  # site_A: two windows
    np.testing.assert_allclose(smooth[smooth["row_id"].str.startswith("site_A")][codes].to_numpy(), [
        (a[0] * 0.5 + a[1] * 0.25) / 0.75, (a[0] * 0.25 + a[1] * 0.5) / 0.75], rtol=1e-5)
    c = raw[raw["row_id"] == "site_C_1"][codes].to_numpy()
    np.testing.assert_allclose(smooth[smooth["row_id"] == "site_C_1"][codes].to_numpy(), c, rtol=1e-6)  # one window: unchanged

    result = predict("--out", tmp_path / "boost.csv", "--boost", "--boost-threshold", "0", "--boost-factor", "2", *base)
    assert result.exit_code == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "boost.csv")[codes].to_numpy(), np.minimum(raw[codes].to_numpy() * 2, 1), rtol=1e-5)

    bad = predict("--out", tmp_path / "bad.csv", "--smooth", "a,b", *base)
    assert bad.exit_code == 2 and "--smooth takes comma-separated numbers" in bad.output


def test_openvino_streams_give_the_torch_scores(model_path, audio, tmp_path):
    pytest.importorskip("openvino")
    torch_csv, ov_csv = tmp_path / "torch.csv", tmp_path / "ov.csv"
    assert predict("--model", model_path, "--out", torch_csv, "--backend", "torch", "--batch-size", "4", audio).exit_code == 0
    result = predict("--model", model_path, "--out", ov_csv, "--backend", "openvino", "--streams", "2", "--batch-size", "4", audio)
    assert result.exit_code == 0, result.output
    expected, actual = pd.read_csv(torch_csv), pd.read_csv(ov_csv)
    assert actual["row_id"].tolist() == expected["row_id"].tolist()
    np.testing.assert_allclose(actual[list(LABELS.codes)], expected[list(LABELS.codes)], rtol=0, atol=1e-4)
    bad = predict("--model", model_path, "--out", tmp_path / "bad.csv", "--backend", "torch", "--streams", "2", audio)
    assert bad.exit_code != 0 and "streams applies to the openvino backend only" in bad.output


# ------------------------------------------------------------------------------------------------ bad input


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_inputs_sharing_a_file_name_are_refused_before_any_work(model_path, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_audio(tmp_path / folder / "rec.ogg", tone(frequency_hz=900.0, duration=1.0, sample_rate=RATE, amplitude=0.3), RATE)
    out = tmp_path / "sub.csv"
    result = predict("--model", model_path, "--out", out, tmp_path / "a", tmp_path / "b")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"inputs share the file name 'rec': {tmp_path / 'a' / 'rec.ogg'}, {tmp_path / 'b' / 'rec.ogg'}" in line and "row_ids" in line
    assert not out.exists() and not (tmp_path / ".sub.csv.parts").exists()  # nothing scored, no run.json


def test_an_out_naming_a_folder_is_refused_before_any_work(model_path, audio, tmp_path):
    (tmp_path / "results").mkdir()
    result = predict("--model", model_path, "--out", tmp_path / "results", audio)
    assert result.exit_code == 2
    assert "results: is a folder; the submission is a CSV file" in one_error_line(result)
    assert not (tmp_path / ".results.parts").exists()


def test_disk_full_is_one_line_with_exit_code_2_and_the_rerun_resumes(model_path, audio, tmp_path, monkeypatch):
    import errno

    from birdcall.infer import writers

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "sub.csv"
    monkeypatch.setattr(writers, "write_submission", full)
    result = predict("--model", model_path, "--out", out, "--batch-size", "4", audio)
    assert result.exit_code == 2  # not 1 ("some files skipped"), not a traceback
    assert one_error_line(result) == f"error: {out}: cannot write (No space left on device); the files finished so far are kept: rerun the same command to resume"
    monkeypatch.undo()
    again = predict("--model", model_path, "--out", out, "--batch-size", "4", audio)
    assert again.exit_code == 0 and "3 file(s) were done by an earlier run" in again.output and len(pd.read_csv(out)) == 7


@pytest.mark.integration
def test_repeated_model_options_average_the_models(model_path, audio, tmp_path):
    """``--model A --model B``: an ensemble, the mean of each model's probabilities; resumable like one model."""
    import torch

    from birdcall.models import create_model, save_model

    torch.manual_seed(7)
    other = create_model("test_cnn", num_classes=3, features=FeatureConfig(n_mels=32, n_fft=512, hop_length=256, clip_duration=1.0))
    other_path = save_model(other, tmp_path / "other.safetensors", labels=LABELS)
    outs = {}
    for name, models in (("a", [model_path]), ("b", [other_path]), ("ab", [model_path, other_path])):
        outs[name] = tmp_path / f"{name}.csv"
        args = [arg for m in models for arg in ("--model", m)]
        result = predict(*args, "--out", outs[name], "--batch-size", "4", audio)
        assert result.exit_code == 0, result.output
    a, b, ab = (pd.read_csv(outs[k]).set_index("row_id")[list(LABELS.codes)] for k in ("a", "b", "ab"))
    assert not np.allclose(a.to_numpy(), b.to_numpy())
    np.testing.assert_allclose(ab.to_numpy(), (a.to_numpy() + b.to_numpy()) / 2, atol=1e-6)
    again = predict("--model", model_path, "--model", other_path, "--out", outs["ab"], "--batch-size", "4", audio)
    assert again.exit_code == 0 and "3 files" in again.output  # the same ensemble resumes its finished run
    swapped = predict("--model", other_path, "--model", model_path, "--out", outs["ab"], "--batch-size", "4", audio)
    assert swapped.exit_code != 0 and "model" in swapped.output.lower()  # another ensemble is another run


def test_the_default_backend_is_named_and_torch_or_an_unwritable_cache_runs_torch(model_path, audio, tmp_path, monkeypatch):
    """No --backend: the checkpoint runs on its cached OpenVINO export (when OpenVINO is installed) and the summary says
    so; --backend torch writes no cache; a cache that cannot be written is one warning line, and torch's scores."""
    import shutil

    from birdcall.infer import cache

    pytest.importorskip("openvino")
    result = predict("--model", model_path, "--out", tmp_path / "fast.csv", audio)
    assert result.exit_code == 0, result.output
    assert "backend openvino (" in result.output and f"export of {model_path.name})" in result.output

    fresh = tmp_path / "fresh" / model_path.name
    fresh.parent.mkdir()
    shutil.copy(model_path, fresh)
    result = predict("--model", fresh, "--backend", "torch", "--out", tmp_path / "torch.csv", audio)
    assert result.exit_code == 0 and "backend torch\n" in result.output and not (fresh.parent / cache.CACHE_DIR).exists()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache.tempfile, "mkdtemp", read_only)  # a read-only folder (the tests may run as root)
    result = predict("--model", fresh, "--out", tmp_path / "fallback.csv", audio)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "running on torch: cannot write the export cache" in warned[0] and "backend torch\n" in result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fallback.csv"), pd.read_csv(tmp_path / "torch.csv"))
    from birdcall.export.metadata import TOLERANCE

    fast, slow = pd.read_csv(tmp_path / "fast.csv"), pd.read_csv(tmp_path / "torch.csv")
    np.testing.assert_allclose(fast[list(LABELS.codes)], slow[list(LABELS.codes)], rtol=0, atol=TOLERANCE)
