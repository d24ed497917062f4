import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data import ClipDataset, read_clip_table
from birdcall.errors import DataError
from birdcall.features import FeatureConfig


def _tone(seconds, freq=2000.0, sample_rate=32000):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _make(root, rows, taxonomy=("aaa", "bbb", "ccc")):
    for row in rows:
        path = root / "train_audio" / row["filename"]
        if not row.pop("_missing", False):
            write_audio(path, _tone(row.pop("_seconds", 5.0)), 32000)
        row.pop("_seconds", None)
    pd.DataFrame(rows).to_csv(root / "train_metadata.csv", index=False)
    if taxonomy:
        pd.DataFrame({"species_code": list(taxonomy), "scientific_name": ["X y"] * len(taxonomy), "common_name": ["Z"] * len(taxonomy)}).to_csv(root / "taxonomy.csv", index=False)


def test_birdclef_columns_with_secondary_labels(tmp_path):
    _make(tmp_path, [
        {"filename": "aaa/1.wav", "primary_label": "aaa", "secondary_labels": "['ccc']"},
        {"filename": "bbb/2.wav", "primary_label": "bbb", "secondary_labels": "[]"},
    ])
    table = read_clip_table(tmp_path)
    assert table.labels.codes == ("aaa", "bbb", "ccc")  # taxonomy order
    assert table.frame["labels"].tolist() == [["aaa", "ccc"], ["bbb"]]
    assert table.frame["secondary"].tolist() == [["ccc"], []]


def test_labels_column_space_separated_and_no_taxonomy(tmp_path):
    _make(tmp_path, [{"filename": "bbb/1.wav", "labels": "bbb aaa"}], taxonomy=None)
    table = read_clip_table(tmp_path)
    assert table.labels.codes == ("aaa", "bbb") and table.frame["labels"][0] == ["bbb", "aaa"]


def test_all_problems_reported_at_once_or_skipped(tmp_path):
    _make(tmp_path, [
        {"filename": "aaa/ok.wav", "primary_label": "aaa", "secondary_labels": "[]"},
        {"filename": "aaa/missing.wav", "primary_label": "aaa", "secondary_labels": "[]", "_missing": True},
        {"filename": "zzz/unknown.wav", "primary_label": "zzz", "secondary_labels": "[]"},
        {"filename": "aaa/bad.wav", "primary_label": "aaa", "secondary_labels": "['bbb'"},
        {"filename": "aaa/ok.wav", "primary_label": "aaa", "secondary_labels": "[]", "_missing": True},
    ])
    with pytest.raises(DataError) as info:
        read_clip_table(tmp_path)
    message = str(info.value)
    assert "train_metadata.csv" in message and "4 bad row(s)" in message and "\n" not in message
    for expected in ("audio file missing", "unknown species code(s) ['zzz']", "cannot parse labels", "duplicate row"):
        assert expected in message
    table = read_clip_table(tmp_path, skip_bad=True)
    assert table.frame["filename"].tolist() == ["aaa/ok.wav"] and len(table.problems) == 4


@pytest.mark.parametrize("content", ["", "just,a\n", "filename\n"])
def test_malformed_metadata(tmp_path, content):
    (tmp_path / "train_metadata.csv").write_text(content)
    with pytest.raises(DataError, match="train_metadata.csv"):
        read_clip_table(tmp_path)


def test_clip_dataset_crops_reproducibly(tmp_path):
    path = tmp_path / "long.wav"
    write_audio(path, np.random.default_rng(0).standard_normal(32000 * 9).astype(np.float32) * 0.1, 32000)
    short = tmp_path / "short.wav"
    write_audio(short, _tone(2.0), 32000)
    features = FeatureConfig()
    targets = np.eye(2, dtype=np.float32)
    train = ClipDataset([path, short], targets, features, train=True, seed=3)
    x0, y0 = train[0]
    assert x0.shape == (features.clip_samples,) and x0.dtype.is_floating_point and y0.tolist() == [1.0, 0.0]
    assert np.array_equal(train[0][0].numpy(), x0.numpy())  # same epoch, same crop
    train.set_epoch(1)
    assert not np.array_equal(train[0][0].numpy(), x0.numpy())  # new epoch, new crop
    xs, _ = train[1]
    assert np.all(xs.numpy()[2 * 32000 :] == 0) and np.abs(xs.numpy()[: 2 * 32000]).max() > 0.2  # zero padded
    evaluation = ClipDataset([path], targets[:1], features, train=False)
    assert np.allclose(evaluation[0][0].numpy(), train._audio(path)[: features.clip_samples], atol=1e-6)  # eval starts at 0


def test_waveform_augment_runs_on_training_crops_only(tmp_path):
    from birdcall.augment import AddBackgroundNoise

    clip, noise_path = tmp_path / "clip.wav", tmp_path / "noise.wav"
    write_audio(clip, _tone(5.0), 32000)
    write_audio(noise_path, np.random.default_rng(1).standard_normal(32000 * 6).astype(np.float32) * 0.05, 32000)
    features = FeatureConfig()
    augment = AddBackgroundNoise([noise_path], min_snr_db=10.0, max_snr_db=10.0, p=1.0)
    plain = ClipDataset([clip], np.ones((1, 1)), features, train=True)[0][0].numpy()
    noisy = ClipDataset([clip], np.ones((1, 1)), features, train=True, augment=augment)[0][0].numpy()
    added = noisy - plain
    snr = 20 * np.log10(np.sqrt(np.mean(plain**2)) / np.sqrt(np.mean(added**2)))
    assert snr == pytest.approx(10.0, abs=0.05)
    evaluation = ClipDataset([clip], np.ones((1, 1)), features, train=False, augment=augment)
    np.testing.assert_array_equal(evaluation[0][0].numpy(), plain)  # never in evaluation


def test_audio_cache_backs_the_dataset(tmp_path):
    from birdcall.data import AudioCache

    clip = tmp_path / "clip.wav"
    write_audio(clip, _tone(5.0), 32000)
    cache = AudioCache(tmp_path / "cache", sample_rate=32000, dtype="float32")
    ds = ClipDataset([clip], np.ones((1, 1)), FeatureConfig(), train=False, audio_cache=cache)
    np.testing.assert_allclose(ds[0][0].numpy(), _tone(5.0), atol=1e-4)
    assert cache.entry_path(clip).is_file()
    from birdcall.errors import ParameterError
    with pytest.raises(ParameterError, match="audio cache at 16000 Hz"):
        ClipDataset([clip], np.ones((1, 1)), FeatureConfig(), train=False, audio_cache=AudioCache(tmp_path / "c2", sample_rate=16000))


def test_empty_primary_label_is_a_bad_row_not_a_species(tmp_path):
    _make(tmp_path, [
        {"filename": "aaa/1.wav", "primary_label": "aaa", "secondary_labels": "[]"},
        {"filename": "aaa/2.wav", "primary_label": "  ", "secondary_labels": "['bbb']"},
        {"filename": "bbb/3.wav", "primary_label": "", "secondary_labels": "[]"},
    ], taxonomy=None)  # without taxonomy.csv nothing else would notice
    with pytest.raises(DataError, match=r"2 bad row\(s\): train_metadata.csv row 3 \(aaa/2.wav\): empty primary_label; "
                                        r"train_metadata.csv row 4 \(bbb/3.wav\): empty primary_label") as info:
        read_clip_table(tmp_path)
    assert "\n" not in str(info.value)
    table = read_clip_table(tmp_path, skip_bad=True)
    assert table.labels.codes == ("aaa",) and table.frame["filename"].tolist() == ["aaa/1.wav"]
    assert [cause for _, cause in table.problems] == ["empty primary_label", "empty primary_label"]
