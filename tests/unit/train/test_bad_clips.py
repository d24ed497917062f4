"""fit and fit_folds find a corrupt training clip before the first epoch (and before writing the run folder)."""

import shutil
from dataclasses import replace

import pytest

from birdcall.data import read_clip_table
from birdcall.errors import DataError
from birdcall.train import fit, fit_folds


@pytest.fixture
def broken_data(tiny_data, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    clip = sorted((root / "train_audio").rglob("*.wav"))[3]
    clip.write_bytes(clip.read_bytes()[:2000])  # cut short: the header declares more samples than there are
    return root, clip


def test_fit_refuses_a_corrupt_clip_before_training(broken_data, tiny_config, tmp_path):
    root, clip = broken_data
    table = read_clip_table(root)  # not checked: fit checks
    with pytest.raises(DataError) as info:
        fit(table, replace(tiny_config, epochs=1), tmp_path / "run", show_progress=False)
    message = str(info.value)
    assert "\n" not in message and clip.relative_to(root / "train_audio").as_posix() in message and "cannot decode audio: truncated" in message
    assert not (tmp_path / "run").exists()  # nothing was written
    with pytest.raises(DataError, match="cannot decode audio"):
        fit_folds(table, replace(tiny_config, epochs=1, folds=2), tmp_path / "cv", show_progress=False)
    assert not (tmp_path / "cv").exists()


def test_skipped_corrupt_clip_trains_without_it(broken_data, tiny_config, tmp_path):
    root, clip = broken_data
    table = read_clip_table(root, check_audio=True, skip_bad=True)
    assert len(table.problems) == 1 and clip not in set(table.frame["path"])
    result = fit(table, replace(tiny_config, epochs=1, num_workers=1), tmp_path / "run", show_progress=False)
    assert result.history["epoch"].tolist() == [1]
