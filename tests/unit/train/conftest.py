import numpy as np
import pandas as pd
import pytest

from birdcall.data import read_clip_table
from birdcall.features import FeatureConfig
from birdcall.synth import make_dataset
from birdcall.train import TrainConfig

TINY_FEATURES = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_data")
    make_dataset(root, num_species=3, seed=5, clips_per_species=6, num_background=2, num_soundscapes=0, audio_format="wav")
    return root


@pytest.fixture
def tiny_table(tiny_data):
    return read_clip_table(tiny_data)


@pytest.fixture
def tiny_config():
    return TrainConfig(model="test_cnn", features=TINY_FEATURES, epochs=3, batch_size=4, optim={"lr": 3e-3}, threads=1,
                       data={"val_fraction": 0.3, "mix_p": 0.5}, augment={"background_noise_p": 0.5})


@pytest.fixture
def engine_matches_oof():
    """``check(model, labels, table, run_dir, atol=..., count=None)``: score the first ``count`` validation clips of
    ``run_dir/oof.csv`` (all with None) with the streaming engine and assert each one's scores equal its out-of-fold
    row: the same features at training and at inference."""
    from birdcall.infer.batching import score_files
    from birdcall.infer.scorer import TorchScorer

    def check(model, labels, table, run_dir, *, atol: float, count: int | None = None) -> None:
        oof = pd.read_csv(run_dir / "oof.csv").set_index("filename")
        names = list(oof.index)[:count]
        paths = table.frame.set_index("filename").loc[names, "path"].tolist()
        results = {r.index: r for r in score_files(TorchScorer(model, labels=labels), paths)}
        assert len(results) == len(paths) and all(r.ok for r in results.values())
        codes = list(labels.codes)
        for i, name in enumerate(names):
            assert len(results[i].scores) == 1  # every clip is at most one 5-s window
            np.testing.assert_allclose(results[i].scores[codes].to_numpy(float)[0], oof.loc[name, codes].to_numpy(float), atol=atol)

    return check


@pytest.fixture
def kill_training_at(monkeypatch):
    """``kill_training_at(k)``: every later ``fit`` dies at the start of epoch ``k`` (``KeyboardInterrupt``, as a
    killed job would); ``kill_training_at(None)``: runs finish again."""
    from birdcall.train import loop as loop_module

    original = loop_module.train_one_epoch

    def install(epoch_to_kill: int | None) -> None:
        def killed(*args, epoch, **kwargs):
            if epoch == epoch_to_kill:
                raise KeyboardInterrupt
            return original(*args, epoch=epoch, **kwargs)

        monkeypatch.setattr(loop_module, "train_one_epoch", original if epoch_to_kill is None else killed)

    return install
