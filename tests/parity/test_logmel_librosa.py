"""Log-mel parity: numpy `log_mel` and torch `LogMel` against librosa's melspectrogram + power_to_db.

Tolerances, in dB, on every bin whose power is above ``amin`` (1e-10; below it both sides read -100 dB):

- numpy reference (float64 inside) and ``LogMel(dtype=float64)``: 1e-4 dB everywhere. What remains is the
  float32 rounding of the outputs (7.6e-6 dB at -100 dB); we measured at most 1.7e-5 dB.
- ``LogMel`` in float32 (what models run): 1e-3 dB on the bins that float32 can resolve, plus an explicit
  bound on the others. A float32 FFT adds an error of about ``eps32 * rms(|X|)`` to *every* bin of a frame,
  so the absolute error of a mel band is about ``2 * eps32 * rms(|X|) * (W @ |X|)`` (power 2) whatever its own
  level; a band far below the frame's loud content (the tail of a pure tone's window leakage, a chirp outside
  ``[fmin, fmax]``) then has a relative error that no float32 STFT can avoid (librosa avoids it by computing
  its FFT in float64). `_float32_floor_db` turns that floor into dB. We compare with 1e-3 dB where the floor
  is below 1e-4 dB (all bins of the real clips and of noise, 5-17% of a pure tone's bins), and elsewhere check
  the error stays within 1e-3 dB + 20 x the floor (we measured at most 4.5 x the floor).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from birdcall.features import FeatureConfig, LogMel, log_mel, mel_filterbank, stft_power

librosa = pytest.importorskip("librosa")

AMIN = 1e-10
EPS32 = float(np.finfo(np.float32).eps)
DB_PER_REL = 10.0 / np.log(10.0)  # dB change per unit relative change of power

# (sample_rate, n_fft, hop_length, n_mels, fmin, fmax, power): the recipe first, then every value varied.
GRID = [
    (32000, 2048, 512, 128, 50.0, 14000.0, 2.0),
    (16000, 512, 128, 40, 0.0, 8000.0, 2.0),
    (22050, 1024, 256, 64, 300.0, 11025.0, 2.0),
    (48000, 2048, 320, 128, 0.0, 24000.0, 2.0),
    (32000, 1024, 320, 64, 50.0, 14000.0, 1.0),
    (16000, 1024, 160, 80, 20.0, 7600.0, 2.0),
    (44100, 2048, 441, 128, 150.0, 15000.0, 2.0),
]
# Real clips: a spread of species and loudness, plus two no-animal background clips.
NIPS4B_CLIPS = (
    "train_audio/sylmel/trainfile002.ogg",
    "train_audio/erirub/trainfile004.ogg",
    "background/trainfile009.ogg",
    "background/trainfile018.ogg",
)
GRID_IDS = ["sr{}-fft{}-hop{}-mels{}-f{:g}-{:g}-p{:g}".format(*g) for g in GRID]


def _config(params) -> FeatureConfig:
    sample_rate, n_fft, hop_length, n_mels, fmin, fmax, power = params
    return FeatureConfig(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=power
    )


def _librosa(y: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    S = librosa.feature.melspectrogram(
        y=y, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
        fmin=config.fmin, fmax=config.fmax, power=config.power,
    )  # center=True, pad_mode="constant", window="hann", htk=False, norm="slaney": librosa 0.11 defaults
    return S, librosa.power_to_db(S, ref=1.0, amin=AMIN, top_db=config.top_db)


def _float32_floor_db(y: np.ndarray, config: FeatureConfig, S: np.ndarray) -> np.ndarray:
    """Modelled dB error of a float32 STFT in each mel bin (see the module docstring)."""
    magnitude = np.sqrt(stft_power(y=y, n_fft=config.n_fft, hop_length=config.hop_length))  # float64
    weights = mel_filterbank(
        sample_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
    )
    rms = np.sqrt(np.mean(magnitude**2, axis=0, keepdims=True))
    # an error eps32 * rms in |X| changes |X|**p by p * |X|**(p - 1) * eps32 * rms
    floor_power = config.power * EPS32 * rms * (weights @ magnitude ** (config.power - 1))
    return DB_PER_REL * floor_power / np.maximum(S, 1e-300)


def _check_float32(y: np.ndarray, config: FeatureConfig, ours: np.ndarray, S: np.ndarray, expected: np.ndarray):
    """Assert the float32 tolerances; return (max error on resolvable bins, fraction of bins compared)."""
    floor = _float32_floor_db(y, config, S)
    error = np.abs(ours.astype(np.float64) - expected)
    above = S > AMIN
    resolvable = above & (floor < 1e-4)
    assert error[resolvable].max(initial=0.0) <= 1e-3
    assert np.all(error[above] <= 1e-3 + 20 * floor[above])
    return error[resolvable].max(initial=0.0), resolvable.mean()


@pytest.mark.parametrize("params", GRID, ids=GRID_IDS)
def test_synthetic_numpy_and_torch_match_librosa(params, synthetic):
    config = _config(params)
    signals = synthetic(config.sample_rate)
    batch = np.stack(list(signals.values()))
    torch32 = LogMel(config)(torch.from_numpy(batch)).numpy()
    torch64 = LogMel(config, dtype=torch.float64)(torch.from_numpy(batch).double()).numpy()
    reference = log_mel(y=batch, config=config)
    assert torch32.dtype == np.float32 and reference.dtype == np.float32
    for i, (name, y) in enumerate(signals.items()):
        S, expected = _librosa(y, config)
        assert reference[i].shape == expected.shape == (config.n_mels, config.num_frames(y.size))
        np.testing.assert_allclose(reference[i], expected, rtol=0, atol=1e-4, err_msg=f"numpy reference, {name}")
        np.testing.assert_allclose(torch64[i], expected, rtol=0, atol=1e-4, err_msg=f"LogMel float64, {name}")
        _check_float32(y, config, torch32[i], S, expected)


@pytest.mark.parametrize("params", [GRID[0], GRID[2], GRID[4]], ids=[GRID_IDS[0], GRID_IDS[2], GRID_IDS[4]])
@pytest.mark.parametrize("clip", NIPS4B_CLIPS)
def test_real_clips_match_librosa(params, clip, nips4b_clip):
    config = _config(params)
    y = nips4b_clip(clip, config.sample_rate)
    S, expected = _librosa(y, config)
    reference = log_mel(y=y, config=config)
    np.testing.assert_allclose(reference, expected, rtol=0, atol=1e-4)
    torch32 = LogMel(config)(torch.from_numpy(y)[None])[0].numpy()
    max_error, compared = _check_float32(y, config, torch32, S, expected)
    assert compared > 0.99  # field recordings have a noise floor: nothing is beyond float32's reach
    assert max_error <= 1e-3


def test_top_db_matches_librosa(synthetic):
    config = FeatureConfig(top_db=80.0)
    y = synthetic(config.sample_rate)["gated_tone"]
    _, expected = _librosa(y, config)
    assert expected.min() == pytest.approx(expected.max() - 80.0)
    np.testing.assert_allclose(log_mel(y=y, config=config), expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(LogMel(config)(torch.from_numpy(y)[None])[0].numpy(), expected, rtol=0, atol=1e-3)
