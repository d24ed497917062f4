"""A corrupt clip is found before training: ``read_clip_table(check_audio=True)`` decodes every clip once (the
result recorded per file), reports bad clips like other bad rows (or drops them with ``skip_bad``), and a clip
that breaks later still fails as a one-line DataError naming the file, also inside DataLoader workers."""

import json
import shutil

import numpy as np
import pytest
import torch

from birdcall.data import ClipDataset, read_clip_table
from birdcall.data import dataset as dataset_module
from birdcall.data.dataset import audio_check_record, check_clip_audio
from birdcall.errors import DataError
from birdcall.features import FeatureConfig
from birdcall.synth import make_dataset

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "data"
    make_dataset(root, num_species=2, seed=4, clips_per_species=3, num_background=2, num_soundscapes=0)
    return root


@pytest.fixture
def data(pristine, tmp_path):
    """A tiny Ogg data set (2 species x 3 clips, 2 background clips): one clip truncated, one background clip garbage."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    clips = sorted((root / "train_audio").rglob("*.ogg"))
    truncated = clips[1]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    garbage = min((root / "background").rglob("*.ogg"))
    garbage.write_bytes(b"not audio at all " * 64)
    return root, truncated, garbage


def test_corrupt_clips_are_refused_up_front_in_one_line(data):
    root, truncated, garbage = data
    assert len(read_clip_table(root).frame) == 6  # without the check nothing notices
    with pytest.raises(DataError) as info:
        read_clip_table(root, check_audio=True)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{root / 'train_metadata.csv'}: 1 bad row(s) and 1 bad background file(s): ")
    rel = truncated.relative_to(root / "train_audio").as_posix()
    assert f"({rel}): cannot decode audio: truncated" in message
    assert f"background/{garbage.name}: cannot decode audio: " in message
    assert "use skip_bad to drop them" in message


def test_skip_bad_drops_and_lists_them_and_the_result_is_recorded(data, monkeypatch):
    root, truncated, garbage = data
    table = read_clip_table(root, check_audio=True, skip_bad=True)
    assert table.audio_checked and len(table.frame) == 5 and truncated not in set(table.frame["path"])
    assert garbage not in table.background_files and len(table.background_files) == 1
    assert [w.split(" (")[0] for w, _ in table.problems] == ["train_metadata.csv row 3", f"background/{garbage.name}"]
    assert not list(root.glob('.birdcall-audio*'))  # nothing is written into the data set
    record = json.loads(audio_check_record(root).read_text())
    assert len(record["files"]) == 8 and sum(v["error"] is not None for v in record["files"].values()) == 2

    decoded = []
    original = dataset_module._decode_error
    monkeypatch.setattr(dataset_module, "_decode_error", lambda p: decoded.append(p) or original(p))
    again = read_clip_table(root, check_audio=True, skip_bad=True)
    assert decoded == [] and again.problems == table.problems  # the second run decodes nothing
    fixed = table.frame["path"].iloc[0]
    fixed.write_bytes(fixed.read_bytes())  # rewritten: new modification time
    truncated.unlink()
    np.save(root / "unrelated.npy", np.zeros(1))
    read_clip_table(root, check_audio=True, skip_bad=True)
    assert decoded == [fixed]  # only the changed file (the missing one is a bad row before any decoding)


def test_check_clip_audio_on_a_read_table_and_a_record_folder(data, tmp_path):
    root, truncated, _ = data
    table = read_clip_table(root)
    name = truncated.relative_to(root / "train_audio").as_posix()
    with pytest.raises(DataError, match=rf"train_metadata.csv \({name}\): cannot decode audio: truncated"):
        check_clip_audio(table, record_dir=tmp_path / "records")
    assert not audio_check_record(root).exists() and len(list((tmp_path / "records").glob("audio-check-*.json"))) == 1
    checked = check_clip_audio(table, skip_bad=True, record_dir=tmp_path / "records")
    assert len(checked.frame) == 5 and checked.frame.index.tolist() == list(range(5))


@pytest.mark.parametrize("workers", [0, 1])
def test_a_clip_broken_during_training_is_a_one_line_data_error_naming_it(data, workers):
    root, _, _ = data
    table = read_clip_table(root, check_audio=True, skip_bad=True)
    paths = list(table.frame["path"])
    ds = ClipDataset(paths, np.zeros((len(paths), 2), np.float32), SMALL, train=True, augment=None)
    paths[2].write_bytes(b"\0" * 100)  # modified on disk after the check
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers)
    with pytest.raises(DataError) as info:  # not a RuntimeError carrying a worker traceback
        for _ in loader:
            pass
    assert info.value.path == str(paths[2])
    message = str(info.value)
    assert message.startswith(f"{paths[2]}: cannot be read during training (") and "\n" not in message and "Traceback" not in message
