"""Background noise for the synthetic data set.

A background is a random mix of stationary beds and sparse events:

* pink noise (1/f power) and brown noise (1/f^2 down to ~20 Hz): broadband hiss and rumble;
* wind: low-passed white noise (cutoff 150-700 Hz) under a slow random gust envelope (0.05-0.5 Hz);
* rain: occasional clicks, each a 1-4 ms burst of high-passed noise with a sharp decay;
* distant chorus: faint calls of other (non-target) species, low-passed at 1.5-4 kHz and reverberated.

Stationary parts are generated block by block with carried filter state, so the cost in memory is the float32
output plus one block, whatever the duration. :func:`render_background` returns the mix scaled to unit RMS;
the data-set writer sets its level and mixes calls at a chosen SNR relative to it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import signal as _signal

from .._validate import check_int
from ..errors import ParameterError
from .calls import SpeciesSpec, render_call

__all__ = [
    "pink_noise",
    "brown_noise",
    "wind_noise",
    "rain_clicks",
    "distant_chorus",
    "render_background",
]

_BLOCK = 1 << 18  # samples per block of the streamed stationary noise

# Pink-noise filter (J. O. Smith, "Spectral Audio Signal Processing": 3 poles, 3 zeros, within 0.3 dB of 1/f).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
_BROWN_CORNER_HZ = 20.0


def _check_num_samples(num_samples: int) -> int:
    return check_int("num_samples", num_samples, min=1)


def _check_rate(sample_rate: int) -> int:
    return check_int("sample_rate", sample_rate, min=8000)


@functools.lru_cache(maxsize=None)
def _pink_gain() -> float:
    impulse = np.zeros(1 << 16)
    impulse[0] = 1.0
    return float(np.sqrt(np.sum(_signal.lfilter(_PINK_B, _PINK_A, impulse) ** 2)))


class _Stream:
    """White noise through a fixed IIR filter, scaled to unit RMS, produced block by block with carried state."""

    def __init__(self, b: np.ndarray, a: np.ndarray, gain: float):
        self.b, self.a, self.gain = b, a, gain
        self.zi = np.zeros(max(len(a), len(b)) - 1)

    def read(self, white: np.ndarray) -> np.ndarray:
        y, self.zi = _signal.lfilter(self.b, self.a, white, zi=self.zi)
        return y / self.gain

    def warm_up(self, rng: np.random.Generator, num_samples: int) -> None:
        """Run the filter on discarded noise so the output starts in its stationary state."""
        self.read(rng.standard_normal(num_samples))


def _pink_stream() -> _Stream:
    return _Stream(_PINK_B, _PINK_A, _pink_gain())


def _brown_stream(sample_rate: int) -> _Stream:
    pole = math.exp(-2.0 * math.pi * _BROWN_CORNER_HZ / sample_rate)
    return _Stream(np.array([1.0]), np.array([1.0, -pole]), 1.0 / math.sqrt(1.0 - pole * pole))


def _lowpass_stream(cutoff_hz: float, sample_rate: int) -> _Stream:
    b, a = _signal.butter(2, cutoff_hz, btype="lowpass", fs=sample_rate)
    impulse = np.zeros(sample_rate)
    impulse[0] = 1.0
    return _Stream(b, a, float(np.sqrt(np.sum(_signal.lfilter(b, a, impulse) ** 2))))


def pink_noise(num_samples: int, *, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power spectrum) noise of approximately unit RMS.

    Returns:
        ``(num_samples,)`` float32.
    """
    n = _check_num_samples(num_samples)
    stream = _pink_stream()
    stream.warm_up(rng, 4096)
    return stream.read(rng.standard_normal(n)).astype(np.float32)


def brown_noise(num_samples: int, *, rng: np.random.Generator, sample_rate: int = 32_000) -> np.ndarray:
    """Brown (1/f^2 power spectrum above ~20 Hz) noise of approximately unit RMS.

    Returns:
        ``(num_samples,)`` float32.
    """
    n, sr = _check_num_samples(num_samples), _check_rate(sample_rate)
    stream = _brown_stream(sr)
    stream.warm_up(rng, sr // 4)
    return stream.read(rng.standard_normal(n)).astype(np.float32)


class _Gusts:
    """Slow positive envelope (mean square ~1): exp of low-passed noise at 50 Hz, interpolated on demand."""

    control_rate = 50.0

    def __init__(self, num_samples: int, *, rng: np.random.Generator, sample_rate: int, gust_hz: float, depth: float):
        self.sample_rate = sample_rate
        num_control = int(math.ceil(num_samples / sample_rate * self.control_rate)) + 2
        warm = int(10 * self.control_rate / gust_hz)
        b, a = _signal.butter(2, gust_hz, btype="lowpass", fs=self.control_rate)
        z = _signal.lfilter(b, a, rng.standard_normal(warm + num_control))[warm:]
        impulse = np.zeros(warm + 64)
        impulse[0] = 1.0
        z /= np.sqrt(np.sum(_signal.lfilter(b, a, impulse) ** 2))  # unit variance in theory
        self.control = np.exp(depth * z - depth * depth)  # E[exp(2 depth z)] = exp(2 depth^2): mean square 1

    def slice(self, start: int, stop: int) -> np.ndarray:
        t = np.arange(start, stop) / self.sample_rate * self.control_rate
        return np.interp(t, np.arange(len(self.control)), self.control)


def wind_noise(
    num_samples: int,
    *,
    rng: np.random.Generator,
    sample_rate: int = 32_000,
    cutoff_hz: float = 400.0,
    gust_hz: float = 0.2,
    depth: float = 0.8,
) -> np.ndarray:
    """Wind-like noise: low-passed white noise with a slow random amplitude modulation (gusts).

    Args:
        num_samples: length of the output.
        rng: source of randomness.
        sample_rate: rate in Hz.
        cutoff_hz: low-pass cutoff of the rumble.
        gust_hz: bandwidth of the gust envelope (gusts last about ``1 / gust_hz`` seconds).
        depth: standard deviation of the log-envelope (0 gives steady wind).

    Returns:
        ``(num_samples,)`` float32, mean square about 1.
    """
    n, sr = _check_num_samples(num_samples), _check_rate(sample_rate)
    if not 0 < cutoff_hz < sr / 2 or gust_hz <= 0 or depth < 0:
        raise ParameterError(
            "wind_noise: need 0 < cutoff_hz < sample_rate/2, gust_hz > 0 and depth >= 0, "
            f"got {cutoff_hz}, {gust_hz}, {depth}"
        )
    stream = _lowpass_stream(cutoff_hz, sr)
    stream.warm_up(rng, sr // 10)
    gusts = _Gusts(n, rng=rng, sample_rate=sr, gust_hz=gust_hz, depth=depth)
    return (stream.read(rng.standard_normal(n)) * gusts.slice(0, n)).astype(np.float32)


def _click_kernel(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    length = max(8, int(rng.uniform(0.001, 0.004) * sample_rate))
    decay = np.exp(-np.arange(length) / (length / 5.0))
    burst = np.diff(rng.standard_normal(length + 1)) * decay  # first difference: high-passed
    return burst / (np.max(np.abs(burst)) + 1e-12)


def _add_rain(out: np.ndarray, *, rng: np.random.Generator, sample_rate: int, rate_hz: float, level: float) -> None:
    n = len(out)
    count = int(rng.poisson(rate_hz * n / sample_rate))
    positions = np.sort(rng.integers(0, n, count))
    amplitudes = level * np.exp(rng.normal(0.0, 0.7, count))
    for pos, amp in zip(positions, amplitudes):
        kernel = _click_kernel(rng, sample_rate)
        stop = min(n, pos + len(kernel))
        out[pos:stop] += (amp * kernel[: stop - pos]).astype(out.dtype)


def rain_clicks(
    num_samples: int, *, rng: np.random.Generator, sample_rate: int = 32_000, rate_hz: float = 10.0
) -> np.ndarray:
    """Rain-like clicks: a Poisson train (``rate_hz`` per second) of short high-passed bursts.

    Returns:
        ``(num_samples,)`` float32, click peaks around 1.
    """
    n, sr = _check_num_samples(num_samples), _check_rate(sample_rate)
    if rate_hz < 0:
        raise ParameterError(f"rain_clicks: rate_hz must be >= 0, got {rate_hz}")
    out = np.zeros(n, dtype=np.float32)
    _add_rain(out, rng=rng, sample_rate=sr, rate_hz=rate_hz, level=1.0)
    return out


def _reverb(y: np.ndarray, *, rng: np.random.Generator, sample_rate: int, rt60: float, wet: float) -> np.ndarray:
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir /= np.sqrt(np.sum(ir**2))
    tail = _signal.fftconvolve(y, ir)
    dry = np.concatenate([y, np.zeros(length - 1)])
    return (1.0 - wet) * dry + wet * tail


def _add_chorus(
    out: np.ndarray,
    *,
    rng: np.random.Generator,
    sample_rate: int,
    species: Sequence[SpeciesSpec],
    calls_per_minute: float,
    level_db: tuple[float, float],
) -> None:
    n = len(out)
    count = int(rng.poisson(calls_per_minute * n / sample_rate / 60.0))
    for _ in range(count):
        spec = species[int(rng.integers(len(species)))]
        call = render_call(spec, rng=rng, sample_rate=sample_rate).astype(np.float64)
        cutoff = min(rng.uniform(1500.0, 4000.0), 0.45 * sample_rate)
        sos = _signal.butter(2, cutoff, btype="lowpass", fs=sample_rate, output="sos")
        call = _signal.sosfilt(sos, call)
        call = _reverb(call, rng=rng, sample_rate=sample_rate, rt60=rng.uniform(0.2, 0.8), wet=rng.uniform(0.4, 0.8))
        rms = np.sqrt(np.mean(call**2))
        if rms <= 0:
            continue
        gain = 10.0 ** (rng.uniform(*level_db) / 20.0) / rms
        start = int(rng.integers(-len(call) // 2, n))
        lo, hi = max(0, start), min(n, start + len(call))
        if hi > lo:
            out[lo:hi] += (gain * call[lo - start : hi - start]).astype(out.dtype)


def distant_chorus(
    num_samples: int,
    *,
    rng: np.random.Generator,
    species: Sequence[SpeciesSpec],
    sample_rate: int = 32_000,
    calls_per_minute: float = 10.0,
) -> np.ndarray:
    """Faint, low-passed, reverberant calls of ``species`` at random times (a Poisson process).

    Calls may be cut at either end of the output, as in a real recording.

    Returns:
        ``(num_samples,)`` float32; each call has an RMS of 1 (0 dB) before being cut.
    """
    n, sr = _check_num_samples(num_samples), _check_rate(sample_rate)
    if not species or calls_per_minute < 0:
        raise ParameterError("distant_chorus: need at least one species and calls_per_minute >= 0")
    out = np.zeros(n, dtype=np.float32)
    _add_chorus(out, rng=rng, sample_rate=sr, species=species, calls_per_minute=calls_per_minute, level_db=(0.0, 0.0))
    return out


def render_background(
    num_samples: int,
    *,
    rng: np.random.Generator,
    sample_rate: int = 32_000,
    chorus_species: Sequence[SpeciesSpec] = (),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A random background: pink + brown beds, maybe wind, rain and a distant chorus, at unit RMS.

    Each call draws a new mix from ``rng``: pink and brown weights, wind (70 % of backgrounds, random cutoff,
    gust rate and depth), rain (25 %, 2-30 clicks per second), and a distant chorus of ``chorus_species``
    (70 % when species are given, 3-20 calls per minute, each 6-18 dB below the beds).

    Args:
        num_samples: length of the output.
        rng: source of all randomness.
        sample_rate: rate in Hz.
        chorus_species: species for the distant chorus; empty for none. Pass species that are not labelled
            in the data set, or the chorus becomes unlabelled positives.
        out: optional float32 buffer of ``num_samples`` to fill (saves one copy for long recordings).

    Returns:
        ``(num_samples,)`` float32 with RMS 1 (``out`` itself when given).
    """
    n, sr = _check_num_samples(num_samples), _check_rate(sample_rate)
    if out is None:
        out = np.empty(n, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != (n,):
        raise ParameterError(
            f"render_background: out must be a float32 array of shape ({n},), got {out.dtype} {out.shape}"
        )
    weights = np.array([rng.uniform(0.3, 1.0), rng.uniform(0.0, 1.0), 0.0])
    wind = None
    if rng.random() < 0.7:
        weights[2] = rng.uniform(0.3, 1.5)
        wind = _lowpass_stream(rng.uniform(150.0, 700.0), sr)
        gusts = _Gusts(n, rng=rng, sample_rate=sr, gust_hz=rng.uniform(0.05, 0.5), depth=rng.uniform(0.3, 1.0))
    weights /= np.sqrt(np.sum(weights**2))
    pink, brown = _pink_stream(), _brown_stream(sr)
    pink.warm_up(rng, 4096)
    brown.warm_up(rng, sr // 4)
    if wind is not None:
        wind.warm_up(rng, sr // 10)
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        block = weights[0] * pink.read(rng.standard_normal(m)) + weights[1] * brown.read(rng.standard_normal(m))
        if wind is not None:
            block += weights[2] * wind.read(rng.standard_normal(m)) * gusts.slice(start, start + m)
        out[start : start + m] = block
    if rng.random() < 0.25:
        _add_rain(out, rng=rng, sample_rate=sr, rate_hz=rng.uniform(2.0, 30.0), level=rng.uniform(0.5, 3.0))
    if chorus_species and rng.random() < 0.7:
        _add_chorus(out, rng=rng, sample_rate=sr, species=chorus_species,
                    calls_per_minute=rng.uniform(3.0, 20.0), level_db=(-18.0, -6.0))
    power = sum(float(np.sum(np.square(out[i : i + _BLOCK], dtype=np.float64))) for i in range(0, n, _BLOCK)) / n
    if power > 0:
        out *= np.float32(1.0 / math.sqrt(power))
    return out
