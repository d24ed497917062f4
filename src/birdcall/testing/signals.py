"""Seeded test signals: tones, chirps, white and pink noise, synthetic bird calls, a call in noise.

Small pure functions for tests (ours and downstream projects'): every one returns mono ``float32`` and takes its
randomness from an explicit ``rng``, so the same generator state gives the same samples.

Example:
    >>> import numpy as np
    >>> from birdcall.testing.signals import tone
    >>> y = tone(frequency_hz=1000.0, duration=0.5, sample_rate=16000)
    >>> y.dtype, y.shape
    (dtype('float32'), (8000,))
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import check_int
from ..errors import ParameterError
from ..synth.calls import CALL_FAMILIES, SpeciesSpec, render_call
from ..synth.noise import pink_noise as _pink_noise

__all__ = ["tone", "chirp", "white_noise", "pink_noise", "synthetic_call", "call_in_noise"]


def _num_samples(duration: float, sample_rate: int) -> int:
    check_int("sample_rate", sample_rate, min=1)
    if not duration > 0:
        raise ParameterError(f"duration must be > 0, got {duration}")
    return max(1, int(round(duration * sample_rate)))


def _check_frequency(name: str, value: float, sample_rate: int) -> None:
    if not 0 < value < sample_rate / 2:
        raise ParameterError(f"{name} must be in (0, sample_rate/2 = {sample_rate / 2}), got {value}")


def tone(
    *,
    frequency_hz: float,
    duration: float = 1.0,
    sample_rate: int = 32_000,
    amplitude: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """A pure sine ``amplitude * sin(2 pi f t + phase)``.

    Returns:
        ``(round(duration * sample_rate),)`` float32.
    """
    n = _num_samples(duration, sample_rate)
    _check_frequency("frequency_hz", frequency_hz, sample_rate)
    t = np.arange(n) / sample_rate
    return (amplitude * np.sin(2.0 * np.pi * frequency_hz * t + phase)).astype(np.float32)


def chirp(
    *,
    start_hz: float,
    end_hz: float,
    duration: float = 1.0,
    sample_rate: int = 32_000,
    amplitude: float = 0.5,
    method: str = "linear",
) -> np.ndarray:
    """A sine sweep whose instantaneous frequency goes from ``start_hz`` at t=0 to ``end_hz`` at t=duration.

    Args:
        start_hz: frequency at the start.
        end_hz: frequency at the end.
        duration: seconds.
        sample_rate: Hz.
        amplitude: peak amplitude.
        method: ``linear`` (frequency linear in time) or ``exponential`` (log-frequency linear in time).

    Returns:
        ``(round(duration * sample_rate),)`` float32.
    """
    n = _num_samples(duration, sample_rate)
    _check_frequency("start_hz", start_hz, sample_rate)
    _check_frequency("end_hz", end_hz, sample_rate)
    t = np.arange(n) / sample_rate
    if method == "linear":
        phase = 2.0 * np.pi * (start_hz * t + 0.5 * (end_hz - start_hz) / duration * t**2)
    elif method == "exponential":
        if start_hz == end_hz:
            phase = 2.0 * np.pi * start_hz * t
        else:
            k = math.log(end_hz / start_hz) / duration
            phase = 2.0 * np.pi * start_hz * (np.exp(k * t) - 1.0) / k
    else:
        raise ParameterError(f"method must be 'linear' or 'exponential', got {method!r}")
    return (amplitude * np.sin(phase)).astype(np.float32)


def white_noise(
    *, rng: np.random.Generator, duration: float = 1.0, sample_rate: int = 32_000, rms: float = 0.1
) -> np.ndarray:
    """Gaussian white noise with exactly the given RMS.

    Returns:
        ``(round(duration * sample_rate),)`` float32.
    """
    n = _num_samples(duration, sample_rate)
    y = rng.standard_normal(n)
    return (y * (rms / np.sqrt(np.mean(y**2)))).astype(np.float32)


def pink_noise(
    *, rng: np.random.Generator, duration: float = 1.0, sample_rate: int = 32_000, rms: float = 0.1
) -> np.ndarray:
    """Pink (1/f power, -3 dB per octave) noise with exactly the given RMS.

    Returns:
        ``(round(duration * sample_rate),)`` float32.
    """
    n = _num_samples(duration, sample_rate)
    y = _pink_noise(n, rng=rng).astype(np.float64)
    return (y * (rms / np.sqrt(np.mean(y**2)))).astype(np.float32)


def _spec_for(family: str, low_hz: float, high_hz: float, duration: float) -> SpeciesSpec:
    if family not in CALL_FAMILIES:
        raise ParameterError(f"family must be one of {CALL_FAMILIES}, got {family!r}")
    common = dict(code="testsp", scientific_name="Testornis signalis", common_name="Test Bird", family=family,
                  low_hz=low_hz, high_hz=high_hz, duration=duration, note_duration=duration)  # fmt: skip
    if family == "sweep":
        return SpeciesSpec(**common, shape="up")
    if family == "trill":
        notes = max(2, int(duration * 15))
        return SpeciesSpec(**{**common, "note_duration": 0.4 * duration / notes}, num_notes=notes, shape="down")
    if family == "harmonic":
        harmonics = max(1, int(high_hz / (low_hz * 1.06)))
        return SpeciesSpec(**{**common, "high_hz": low_hz * harmonics * 1.06}, num_harmonics=harmonics, shape="n")
    if family == "buzz":
        return SpeciesSpec(**common, modulation_hz=60.0)
    if family == "repeated":
        return SpeciesSpec(**{**common, "note_duration": duration / 7}, num_notes=4, shape="down")
    if family == "warble":
        return SpeciesSpec(**common, modulation_hz=8.0)
    return SpeciesSpec(**{**common, "note_duration": 0.4 * duration}, num_notes=2, shape="down")  # two_note


def synthetic_call(
    *,
    rng: np.random.Generator,
    family: str = "sweep",
    low_hz: float = 2000.0,
    high_hz: float = 4000.0,
    duration: float = 0.5,
    sample_rate: int = 32_000,
    amplitude: float = 0.5,
) -> np.ndarray:
    """One nominal call (no individual variation) of a bird of ``family`` singing in ``[low_hz, high_hz]``.

    For ``harmonic`` the fundamental is ``low_hz`` and the stack holds as many harmonics as fit below
    ``high_hz``. See :mod:`birdcall.synth.calls` for the families.

    Returns:
        ``(about duration * sample_rate,)`` float32 with peak ``amplitude``.
    """
    _num_samples(duration, sample_rate)
    if not 0 < low_hz < high_hz < 0.475 * sample_rate:
        raise ParameterError(f"need 0 < low_hz < high_hz < 0.475 * sample_rate, got {low_hz}, {high_hz}, {sample_rate}")
    spec = _spec_for(family, float(low_hz), float(high_hz), float(duration))
    call = render_call(spec, rng=rng, sample_rate=sample_rate, pitch_scale=1.0, tempo_scale=1.0)
    return (amplitude * call).astype(np.float32)


def call_in_noise(
    *,
    rng: np.random.Generator,
    duration: float = 5.0,
    call_start: float = 1.0,
    snr_db: float = 10.0,
    family: str = "sweep",
    low_hz: float = 2000.0,
    high_hz: float = 4000.0,
    call_duration: float = 0.5,
    sample_rate: int = 32_000,
    noise_rms: float = 0.01,
) -> tuple[np.ndarray, tuple[float, float]]:
    """A :func:`synthetic_call` at ``call_start`` in pink noise, with RMS ``snr_db`` above the noise RMS.

    Returns:
        ``(audio, (start, end))``: ``(round(duration * sample_rate),)`` float32 and the call's extent in seconds.
    """
    n = _num_samples(duration, sample_rate)
    call = synthetic_call(rng=rng, family=family, low_hz=low_hz, high_hz=high_hz, duration=call_duration,
                          sample_rate=sample_rate, amplitude=1.0).astype(np.float64)  # fmt: skip
    start = int(round(call_start * sample_rate))
    if call_start < 0 or start + len(call) > n:
        raise ParameterError(f"the call ({call_start} s + {len(call) / sample_rate:.3f} s) must fit in {duration} s")
    out = pink_noise(rng=rng, duration=duration, sample_rate=sample_rate, rms=noise_rms).astype(np.float64)
    call *= noise_rms * 10.0 ** (snr_db / 20.0) / np.sqrt(np.mean(call**2))
    out[start : start + len(call)] += call
    return out.astype(np.float32), (start / sample_rate, (start + len(call)) / sample_rate)
