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
    return TrainConfig(model="test_cnn", features=TINY_FEATURES, epochs=3, batch_size=4, lr=3e-3, threads=1, val_fraction=0.3, noise_p=0.5, mix_p=0.5)
