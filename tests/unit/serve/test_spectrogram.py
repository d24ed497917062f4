"""The overview spectrogram: a valid PNG, a tone in its row, the width set by the duration, capped."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from birdcall.audio import write_audio
from birdcall.errors import AudioLoadError
from birdcall.serve.spectrogram import png_rgb, spectrogram
from birdcall.testing.signals import tone


def decode_png(data: bytes) -> np.ndarray:
    """The RGB pixels of a PNG written by png_rgb (filter 0 rows, one IDAT chunk)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = np.frombuffer(zlib.decompress(data[41 : 41 + length]), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_png_round_trip():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(decode_png(png_rgb(pixels)), pixels)
    with pytest.raises(ValueError, match="expected"):
        png_rgb(np.zeros((2, 3), dtype=np.uint8))


def test_a_tone_is_the_brightest_row_at_its_frequency(tmp_path):
    path = write_audio(tmp_path / "tone.flac", tone(frequency_hz=3000.0, duration=4.0, sample_rate=16000, amplitude=0.5), 16000)
    picture = spectrogram(path, sample_rate=32000, fmax=8000.0)
    assert (picture.width, picture.height, picture.duration, picture.fmax) == (200, 129, 4.0, 8062.5)  # 50 px/s, 62.5-Hz rows
    pixels = decode_png(picture.png).astype(int).sum(axis=2)  # brightness
    row = int(np.argmax(pixels[:, 100]))
    assert abs((picture.height - 1 - row) * 62.5 - 3000.0) <= 62.5  # row 0 is the top: fmax


def test_the_width_is_capped_and_a_bad_file_says_why(tmp_path):
    path = write_audio(tmp_path / "long.wav", np.zeros(32000 * 60, dtype=np.float32), 32000)
    picture = spectrogram(path, sample_rate=32000, fmax=4000.0, max_width=300)
    assert (picture.width, picture.height) == (300, 65)  # 0-4 kHz in 62.5-Hz rows
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioLoadError, match="bad.wav: not an audio file"):
        spectrogram(bad, sample_rate=32000, fmax=4000.0)
