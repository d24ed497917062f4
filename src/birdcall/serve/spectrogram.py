"""An overview spectrogram of a recording of any length, as a PNG image, in memory bounded by the image.

The file is streamed (:func:`birdcall.audio.stream`) and cut into short FFT frames; each frame's power is added
to the image column its centre falls in, so a 10-minute file costs a chunk of audio plus the image, not the
decoded file. Columns are the mean power of their frames in dB, scaled from 70 dB below the loudest 0.5 % of
the image to that level, through a fixed dark-to-bright colour ramp. Rows are linear FFT bins from 0 Hz to
``fmax`` (the model's band), the lowest at the bottom. The PNG is written with zlib (no imaging library).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .._validate import check_float, check_int
from ..audio import info as audio_info
from ..audio import stream
from ..types import Hz, Pathlike, Seconds

__all__ = ["Spectrogram", "png_rgb", "spectrogram"]

PIXELS_PER_SECOND = 50
MAX_WIDTH = 1600
DYNAMIC_RANGE_DB = 70.0
# Anchors of the colour ramp (position, RGB), dark blue-black to pale yellow, like matplotlib's "inferno".
_RAMP = ((0.0, (0, 0, 4)), (0.2, (50, 10, 94)), (0.4, (120, 28, 109)), (0.6, (188, 55, 84)), (0.8, (249, 140, 10)), (1.0, (252, 255, 164)))


@dataclass(frozen=True)
class Spectrogram:
    """A spectrogram image of a recording.

    Attributes:
        png: the image, PNG bytes, ``width`` x ``height`` RGB.
        duration: seconds of audio the image spans (its width).
        fmax: frequency at the top edge of the image, Hz (the bottom edge is 0 Hz).
        width: columns, each ``duration / width`` seconds.
        height: rows, one FFT bin each.
    """

    png: bytes
    duration: Seconds
    fmax: Hz
    width: int
    height: int


def _ramp() -> np.ndarray:
    """The 256-entry RGB lookup table of the colour ramp, uint8."""
    positions = np.array([p for p, _ in _RAMP])
    colours = np.array([c for _, c in _RAMP], dtype=np.float64)
    x = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(x, positions, colours[:, i]) for i in range(3)], axis=1).round().astype(np.uint8)


def png_rgb(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``(height, width, 3)`` uint8 RGB pixels (8-bit, no interlace)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"png_rgb: expected (height, width, 3) pixels, got shape {pixels.shape}")
    height, width, _ = pixels.shape
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits per channel, RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def spectrogram(path: Pathlike, *, sample_rate: int, fmax: Hz, check: Callable[[], None] | None = None,
                pixels_per_second: float = PIXELS_PER_SECOND, max_width: int = MAX_WIDTH) -> Spectrogram:  # fmt: skip
    """The overview spectrogram of the audio file ``path``, decoded at ``sample_rate``.

    Args:
        path: an audio file.
        sample_rate: rate the audio is decoded at (the model's).
        fmax: highest frequency shown (at most ``sample_rate / 2``).
        check: called before each decoded chunk; raise in it to stop (a request's deadline).
        pixels_per_second: columns per second of audio, up to ``max_width`` columns.
        max_width: most columns.

    Raises:
        AudioLoadError: as :func:`birdcall.audio.stream`.
        ParameterError: bad arguments.
    """
    check_int("sample_rate", sample_rate, min=1)
    check_float("fmax", fmax, min=0.0, min_inclusive=False)
    check_float("pixels_per_second", pixels_per_second, min=0.0, min_inclusive=False)
    check_int("max_width", max_width, min=1)
    duration = audio_info(path).duration
    width = max(1, min(int(max_width), math.ceil(duration * pixels_per_second)))
    n_fft = 2 ** max(6, round(math.log2(sample_rate / 64)))  # 512 at 32 kHz: 62.5-Hz rows, 16-ms frames
    hop = n_fft // 2
    height = min(n_fft // 2 + 1, int(min(fmax, sample_rate / 2) * n_fft / sample_rate) + 1)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    total = np.zeros((width, height), dtype=np.float64)
    counts = np.zeros(width, dtype=np.int64)
    seconds_per_column = max(duration, 1e-9) / width
    carry = np.zeros(0, dtype=np.float32)
    consumed = 0  # absolute sample index of carry[0]
    for chunk in stream(path, sample_rate=sample_rate, chunk_duration=30.0):
        if check is not None:
            check()
        samples = np.concatenate([carry, chunk]) if len(carry) else chunk
        n_frames = 0 if len(samples) < n_fft else 1 + (len(samples) - n_fft) // hop
        if n_frames:
            frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop][:n_frames] * window
            power = np.abs(scipy.fft.rfft(frames, axis=-1)[:, :height]) ** 2
            centres = (consumed + np.arange(n_frames) * hop + n_fft / 2) / sample_rate
            columns = np.minimum(width - 1, (centres / seconds_per_column).astype(np.int64))
            np.add.at(total, columns, power)
            counts += np.bincount(columns, minlength=width)
        carry = samples[n_frames * hop :].copy()
        consumed += n_frames * hop
    mean = total / np.maximum(counts, 1)[:, None]
    decibels = 10.0 * np.log10(mean + 1e-12)
    top = float(np.percentile(decibels, 99.5))
    levels = np.clip((decibels - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)
    indices = np.round(levels.T[::-1] * 255).astype(np.uint8)  # (height, width), lowest frequency at the bottom
    return Spectrogram(png_rgb(_ramp()[indices]), float(duration), float(height * sample_rate / n_fft), width, height)
