"""benchmarks/transfer_mixtures.py: a fold's transfer mixtures hold only that fold's training clips, over the
background groups its validation recordings do not use, with a new seed per pass."""

import pandas as pd
import pytest

from birdcall.synth import make_dataset


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix_data")
    make_dataset(root, num_species=4, clips_per_species=6, num_background=4, num_soundscapes=0,
                 clip_duration=2.0, min_clip_duration=1.0, seed=5)  # fmt: skip
    return root


@pytest.mark.integration
def test_mixtures_hold_only_the_folds_training_clips_and_other_backgrounds(load_benchmark, small_data, tmp_path, monkeypatch):
    import birdcall.data.soundscape as soundscape
    from birdcall.config import from_yaml
    from birdcall.data import read_clip_table
    from birdcall.train import TrainConfig
    from birdcall.train.cv import assign_folds

    mixtures = load_benchmark("transfer_mixtures")
    scape_cv = load_benchmark("nips4b_soundscape_cv")
    used_backgrounds = []
    real = soundscape.assemble_soundscapes

    def spy(clips, backgrounds, out_dir, **kwargs):
        used_backgrounds.append({str(b) for b in backgrounds})
        return real(clips, backgrounds, out_dir, **kwargs)

    monkeypatch.setattr(soundscape, "assemble_soundscapes", spy)
    run = tmp_path / "run"
    assert mixtures.main(["--run", str(run), "--data", str(small_data), "--folds", "2", "--passes", "2", "--duration", "20"]) == 0

    table = read_clip_table(small_data)
    seed = from_yaml(TrainConfig, mixtures.REPO_ROOT / "src" / "birdcall" / "recipes" / "cnn_distill.yaml").seed
    folds = assign_folds(table, n_splits=2, seed=seed)
    groups = scape_cv.background_groups(table.background_files, 2, 0)
    paths = [str(p) for p in table.frame["path"]]
    for k in (0, 1):
        training = {p for p, f in zip(paths, folds) if f != k}
        placed = []
        for j in (0, 1):
            placements = pd.read_csv(run / "transfer_mixtures" / f"fold{k}" / f"pass{j}" / "placements.csv")
            assert set(placements["clip"]) == training  # every training clip once per pass, no validation clip
            assert len(placements) == len(training)
            placed.append(placements)
            # the bed never uses the background group of fold k's validation recordings
            assert used_backgrounds[2 * k + j] == {str(p) for g, group in enumerate(groups) if g != k for p in group}
        assert not placed[0][["clip", "start"]].equals(placed[1][["clip", "start"]])  # each pass has its own seed
