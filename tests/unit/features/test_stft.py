"""PowerSpectrum, the host STFT of exported models: the same tensor as the torch front end's power_frames."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig, LogMel
from birdcall.features.mel import stft_power
from birdcall.features.preemphasis import preemphasis
from birdcall.features.stft import PowerSpectrum, hann_window
from birdcall.testing import signals

CONFIGS = {
    "seed": FeatureConfig(),
    "preemphasis": FeatureConfig(preemphasis=0.97),
    "hop-not-dividing": FeatureConfig(n_fft=1024, hop_length=320, fmax=16_000.0),
    "shorter-than-n_fft": FeatureConfig(n_mels=32, clip_duration=0.05),
}


def _windows(config: FeatureConfig) -> np.ndarray:
    rng = np.random.default_rng(3)
    sr, d = config.sample_rate, config.clip_duration
    return np.stack([
        np.zeros(config.clip_samples, np.float32),  # digital silence
        signals.tone(frequency_hz=3000.0, duration=d, sample_rate=sr),
        signals.white_noise(rng=rng, duration=d, sample_rate=sr, rms=0.2),
    ]).astype(np.float32)  # fmt: skip


def _torch_power(config: FeatureConfig, windows: np.ndarray) -> tuple[np.ndarray, slice]:
    """LogMel.power_frames in float64 on the pre-emphasised waveform: what the exported graph's tensor holds."""
    logmel = LogMel(config, dtype=torch.float64)
    x = preemphasis(windows.astype(np.float64), coef=config.preemphasis) if config.preemphasis > 0 else windows.astype(np.float64)
    return logmel.power_frames(torch.from_numpy(np.ascontiguousarray(x))).numpy(), logmel._bins


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_the_torch_front_end_power_frames(name):
    config = CONFIGS[name]
    windows = _windows(config)
    expected, bins = _torch_power(config, windows)
    actual = PowerSpectrum(config, (bins.start, bins.stop))(windows)
    assert actual.dtype == np.float32 and actual.shape == expected.shape == (3, config.num_frames(config.clip_samples), bins.stop - bins.start)
    # float32 rounding of a 2048-point FFT: relative to each window's peak power
    for a, e in zip(actual[1:], expected[1:]):
        assert np.abs(a - e).max() <= 1e-5 * e.max()
    assert np.all(actual[0] == 0.0)  # silence stays exactly zero (the -100 dB floor downstream)


def test_matches_the_librosa_checked_numpy_stft():
    config = FeatureConfig()
    windows = _windows(config)
    lo, hi = 4, 896
    reference = np.stack([stft_power(y=w.astype(np.float64), n_fft=config.n_fft, hop_length=config.hop_length)[lo:hi].T for w in windows])
    actual = PowerSpectrum(config, (lo, hi))(windows)
    assert np.abs(actual - reference).max() <= 1e-5 * reference.max()


def test_reused_buffers_do_not_leak_between_calls():
    """The work buffers persist: calls with other batch sizes and lengths in between change nothing."""
    config = FeatureConfig(preemphasis=0.97)
    long, short = _windows(config), _windows(CONFIGS["shorter-than-n_fft"])
    reused = PowerSpectrum(config, (4, 896))
    first = reused(long[1:]).copy()
    reused(short)  # another length: the padded buffer is rebuilt
    reused(long[::-1])
    np.testing.assert_array_equal(reused(long[1:]), first)
    np.testing.assert_array_equal(PowerSpectrum(config, (4, 896))(long[1:]), first)


def test_writes_into_out_and_checks_it():
    config = FeatureConfig()
    spectrum = PowerSpectrum(config, (10, 20))
    windows = _windows(config)
    out = np.full(spectrum.output_shape(3, config.clip_samples), -1.0, dtype=np.float32)
    assert spectrum(windows, out=out) is out
    np.testing.assert_array_equal(out, spectrum(windows))
    with pytest.raises(ParameterError, match="out must be float32 of shape"):
        spectrum(windows, out=out[:2])
    with pytest.raises(ParameterError, match="out must be float32"):
        spectrum(windows, out=out.astype(np.float64))


def test_rejects_bad_bins_and_shapes():
    config = FeatureConfig(n_fft=512, hop_length=128, fmax=8000.0, n_mels=32)
    with pytest.raises(ParameterError, match="bins"):
        PowerSpectrum(config, (0, 258))  # n_fft // 2 + 1 = 257 bins
    with pytest.raises(ParameterError, match="bins"):
        PowerSpectrum(config, (5, 5))
    spectrum = PowerSpectrum(config, (0, 257))
    with pytest.raises(ParameterError, match="expected \\(batch, num_samples >= 2\\)"):
        spectrum(np.zeros(1000, np.float32))
    assert spectrum(np.zeros((2, 1000), np.float32)).shape == (2, 1 + 1000 // 128, 257)


def test_hann_window_is_scipys_periodic_hann():
    np.testing.assert_allclose(hann_window(2048), scipy.signal.get_window("hann", 2048, fftbins=True), atol=1e-15)
