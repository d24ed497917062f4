"""Tests for ``birdcall.audio.io``: every format, rate and channel layout; streaming; damaged input; writing.

All audio is synthesized here and written under ``tmp_path``. WAV and FLAC (16-bit PCM) round-trip to
within one quantization step; Ogg/Vorbis and MP3 are lossy, so they are held to an SNR and to the
frequency and amplitude of a tone rather than to exact samples.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.audio import io
from birdcall.audio.io import AudioInfo, info, load, stream, write_audio
from birdcall.errors import AudioLoadError, ParameterError

FORMATS = [".wav", ".flac", ".ogg", ".mp3"]
LOSSY = {".ogg", ".mp3"}
RATES = [16_000, 22_050, 44_100, 48_000]
PCM16_STEP = 1 / 32768
FORMAT_NAMES = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
# (extension, channels): MP3 carries at most two channels.
LAYOUTS = [(ext, ch) for ext in FORMATS for ch in (1, 2, 4) if not (ext == ".mp3" and ch > 2)]
# Channel c is a tone of amplitude AMPLITUDES[c]; the mono mix must be their mean, not the first channel.
AMPLITUDES = {1: [0.6], 2: [0.6, 0.0], 4: [0.6, 0.0, 0.3, 0.3]}


# ------------------------------------------------------------------------------------------------ signals


def tone(
    freq_hz: float, *, sample_rate: int, duration: float, amplitude: float = 0.5, phase: float = 0.0
) -> np.ndarray:
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)


def tone_channels(freq_hz: float, amplitudes: list[float], *, sample_rate: int, duration: float) -> np.ndarray:
    """``(num_samples, channels)``; a single channel comes back 1-D."""
    y = np.stack([tone(freq_hz, sample_rate=sample_rate, duration=duration, amplitude=a) for a in amplitudes], axis=1)
    return y[:, 0] if y.shape[1] == 1 else y


def chord(*, sample_rate: int, duration: float) -> np.ndarray:
    """Two steady tones. LAME leans on the MP3 bit reservoir for them, which exposes decoder restarts."""
    y = tone(600, sample_rate=sample_rate, duration=duration, amplitude=0.3)
    return y + tone(1_700, sample_rate=sample_rate, duration=duration, amplitude=0.2, phase=1.0)


def tone_and_noise(rng: np.random.Generator, *, sample_rate: int, duration: float) -> np.ndarray:
    y = tone(1_000, sample_rate=sample_rate, duration=duration, amplitude=0.3)
    return (y + 0.05 * rng.standard_normal(len(y))).astype(np.float32)


def peak_hz(y: np.ndarray, sample_rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(y * np.hanning(len(y))))) * sample_rate / len(y))


def tone_amplitude(y: np.ndarray, freq_hz: float, sample_rate: int) -> float:
    """Least-squares amplitude of the ``freq_hz`` component, away from resampler and codec edges."""
    inner = slice(len(y) // 10, len(y) - len(y) // 10)
    t = np.arange(len(y))[inner] / sample_rate
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[inner].astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = decoded.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum(error**2)))


def collect(chunks) -> tuple[list[np.ndarray], BaseException | None]:
    """Drain a stream, keeping what it yielded before it raised."""
    out: list[np.ndarray] = []
    try:
        for chunk in chunks:
            out.append(chunk)
    except Exception as err:  # the caller asserts on it
        return out, err
    return out, None


# ------------------------------------------------------------------------------------------------ load


@pytest.mark.parametrize("ext,channels", LAYOUTS, ids=[f"{e[1:]}-{c}ch" for e, c in LAYOUTS])
@pytest.mark.parametrize("source_rate", RATES)
def test_load_any_format_rate_and_channels_gives_mono_float32_at_32k(tmp_path, ext, channels, source_rate):
    freq = 3_000.0
    y = tone_channels(freq, AMPLITUDES[channels], sample_rate=source_rate, duration=1.0)
    path = write_audio(tmp_path / f"tone{ext}", y, source_rate)

    out = load(path)

    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - round(len(y) * 32_000 / source_rate)) <= 1
    assert abs(peak_hz(out, 32_000) - freq) <= 2.0  # 1 Hz bins
    expected = float(np.mean(AMPLITUDES[channels]))  # 0.3 for 2 and 4 channels: the first channel alone is 0.6
    # MP3 at 16 kHz (MPEG-2) comes back ~7 % loud; either way 0.3 is far from 0.6.
    assert tone_amplitude(out, freq, 32_000) == pytest.approx(expected, rel=0.1 if ext in LOSSY else 0.01)


@pytest.mark.parametrize("ext", FORMATS)
def test_load_sample_rate_none_keeps_native_rate_and_samples(tmp_path, ext):
    y = tone_channels(1_500.0, [0.5, 0.25], sample_rate=22_050, duration=1.3)
    path = write_audio(tmp_path / f"tone{ext}", y, 22_050)

    out = load(path, sample_rate=None)

    assert out.dtype == np.float32
    assert len(out) == len(y)  # MP3 and Vorbis decoders trim encoder delay/padding exactly
    mono = y.mean(axis=1)
    if ext in LOSSY:
        assert snr_db(mono, out) > 20
    else:
        np.testing.assert_allclose(out, mono, atol=PCM16_STEP)


def test_load_mono_is_exact_mean_of_channels(tmp_path, rng):
    y = rng.uniform(-0.9, 0.9, size=(5_000, 4)).astype(np.float32)
    path = write_audio(tmp_path / "noise.wav", y, 16_000, subtype="FLOAT")

    out = load(path, sample_rate=None)

    np.testing.assert_allclose(out, y.mean(axis=1), rtol=0, atol=1e-7)
    assert not np.allclose(out, y[:, 0], atol=0.1)


@pytest.mark.parametrize(
    "source_rate,target_rate",
    [(16_000, 32_000), (22_050, 32_000), (44_100, 32_000), (48_000, 32_000), (48_000, 16_000), (22_050, 44_100)],
)
def test_resampling_preserves_frequency_and_length(tmp_path, source_rate, target_rate):
    freq = 2_345.0
    n = 2 * source_rate + 7  # not a whole number of output samples at most ratios
    y = tone(freq, sample_rate=source_rate, duration=n / source_rate)
    path = write_audio(tmp_path / "tone.flac", y, source_rate)

    out = load(path, sample_rate=target_rate)

    assert abs(len(out) - round(n * target_rate / source_rate)) <= 1
    assert abs(peak_hz(out, target_rate) - freq) <= 1.0
    assert tone_amplitude(out, freq, target_rate) == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("ext", FORMATS)
def test_load_offset_and_duration(tmp_path, ext):
    sample_rate = 22_050
    y = chord(sample_rate=sample_rate, duration=3.0)
    path = write_audio(tmp_path / f"clip{ext}", y, sample_rate)
    full = load(path, sample_rate=None)
    start = round(1.2 * sample_rate)  # 1.2 s is on both the 22.05k and the 32k grid

    part = load(path, sample_rate=None, offset=1.2, duration=0.5)
    tail = load(path, sample_rate=None, offset=2.5, duration=10.0)  # runs past the end: clipped
    resampled = load(path, offset=1.2, duration=0.5)

    assert len(part) == round(0.5 * sample_rate)
    # Exact: an MP3 is decoded from the start, never seeked (a seek loses the bit reservoir).
    np.testing.assert_allclose(part, full[start : start + len(part)], atol=1e-6)
    np.testing.assert_allclose(tail, full[round(2.5 * sample_rate) :], atol=1e-6)
    assert len(resampled) == 16_000
    reference = load(path)[38_400:54_400]
    np.testing.assert_allclose(resampled[200:-200], reference[200:-200], atol=2e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"sample_rate": -16_000},
        {"sample_rate": 32_000.0},
        {"sample_rate": True},
        {"offset": -1.0},
        {"offset": math.nan},
        {"duration": 0.0},
        {"duration": -2.0},
        {"duration": math.inf},
    ],
    ids=repr,
)
def test_load_rejects_bad_parameters(tmp_path, kwargs):
    path = write_audio(tmp_path / "a.wav", tone(440, sample_rate=16_000, duration=0.5), 16_000)
    with pytest.raises(ParameterError):
        load(path, **kwargs)


def test_load_offset_past_end_raises(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(440, sample_rate=16_000, duration=0.5), 16_000)
    with pytest.raises(AudioLoadError, match="past the end"):
        load(path, offset=0.5)


@pytest.mark.parametrize("ext", FORMATS)
def test_info_reads_header(tmp_path, ext):
    y = tone_channels(440.0, [0.5, 0.5], sample_rate=44_100, duration=1.5)
    path = write_audio(tmp_path / f"a{ext}", y, 44_100)

    meta = info(path)

    assert meta == AudioInfo(str(path), 44_100, len(y), 2, FORMAT_NAMES[ext])
    assert meta.duration == pytest.approx(1.5)


# ------------------------------------------------------------------------------------------------ stream


def check_chunks(chunks: list[np.ndarray], chunk_len: int) -> None:
    assert chunks, "no chunks"
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    assert [len(c) for c in chunks[:-1]] == [chunk_len] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= chunk_len


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("chunk_duration", [0.5, 0.23, 1.15, 5.0], ids=lambda d: f"{d}s")
@pytest.mark.parametrize("sample_rate", [32_000, None], ids=["32k", "native"])
def test_stream_chunks_concatenate_to_load(tmp_path, rng, ext, chunk_duration, sample_rate):
    # 2.3 s at 22.05 kHz: no chunk duration above divides it; 5 s is longer than the file (one short chunk).
    y = np.stack([tone_and_noise(rng, sample_rate=22_050, duration=2.3)] * 2, axis=1)
    path = write_audio(tmp_path / f"clip{ext}", y, 22_050)
    rate = sample_rate or 22_050

    chunks = list(stream(path, sample_rate=sample_rate, chunk_duration=chunk_duration))

    check_chunks(chunks, round(chunk_duration * rate))
    joined, whole = np.concatenate(chunks), load(path, sample_rate=sample_rate)
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(joined), len(whole))
    np.testing.assert_allclose(joined[:n], whole[:n], atol=1e-4)


@pytest.mark.parametrize("ext", FORMATS)
def test_stream_across_read_blocks_matches_load(tmp_path, ext):
    """40 s at 16 kHz is 2.4 read blocks: decoder and streaming resampler must carry their state across them.

    For MP3 this also catches python-soundfile's seek after every read, which makes mpg123 restart without
    the bit reservoir and decode the following blocks as near-silence.
    """
    y = chord(sample_rate=16_000, duration=40.0)
    path = write_audio(tmp_path / f"long{ext}", y, 16_000)

    chunks = list(stream(path, chunk_duration=3.7))

    check_chunks(chunks, round(3.7 * 32_000))
    assert len(chunks) == math.ceil(40 * 32_000 / round(3.7 * 32_000))
    joined, whole = np.concatenate(chunks), load(path)
    assert abs(len(joined) - len(whole)) <= 2
    n = min(len(joined), len(whole))
    np.testing.assert_allclose(joined[:n], whole[:n], atol=1e-4)


@pytest.fixture(scope="module")
def twenty_second_wav(tmp_path_factory) -> Path:
    y = tone_and_noise(np.random.default_rng(7), sample_rate=16_000, duration=20.0)  # > one read block
    return write_audio(tmp_path_factory.mktemp("stream") / "twenty.wav", y, 16_000)


@settings(max_examples=20, deadline=None)
@given(
    chunk_duration=st.floats(min_value=0.05, max_value=25.0, allow_nan=False),
    sample_rate=st.sampled_from([8_000, 16_000, 32_000, None]),
)
def test_stream_chunk_invariants(twenty_second_wav, chunk_duration, sample_rate):
    rate = sample_rate or 16_000
    chunk_len = max(1, round(chunk_duration * rate))

    lengths = [len(c) for c in stream(twenty_second_wav, sample_rate=sample_rate, chunk_duration=chunk_duration)]

    assert lengths[:-1] == [chunk_len] * (len(lengths) - 1)
    assert 0 < lengths[-1] <= chunk_len
    assert abs(sum(lengths) - 20 * rate) <= 2  # round(n * target / source) within a sample or two


@pytest.mark.integration
def test_stream_memory_does_not_grow_with_file_length(tmp_path):
    """One hour of 16 kHz FLAC streamed (and resampled) to 32 kHz in 60 s chunks, in a fresh interpreter.

    Decoded in one piece the hour would be 3600 * 32000 * 4 B = 461 MB of float32; the peak RSS after the
    first chunk and after the last must differ by far less (decoder + resampler + a 7.7 MB chunk buffer).
    """
    sample_rate, seconds, block = 16_000, 3_600, 60 * 16_000
    cycle = tone(440.0, sample_rate=sample_rate, duration=60.0, amplitude=0.3)  # whole cycles: seamless blocks
    path = tmp_path / "hour.flac"
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(seconds * sample_rate // block):
            out.write(cycle)
    probe = Path(__file__).with_name("stream_memory_probe.py")

    result = subprocess.run([sys.executable, str(probe), str(path), "60"], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    growth = report["end_peak_mib"] - report["start_peak_mib"]
    figures = (
        f"peak RSS ({report['peak_source']}) {report['start_peak_mib']:.1f} MiB after the first chunk,"
        f" {report['end_peak_mib']:.1f} MiB at the end"
        f" (current RSS {report['start_rss_mib']:.1f} -> {report['end_rss_mib']:.1f} MiB)"
    )
    print(figures)
    assert growth < 40, figures
    lengths = report["lengths"]
    assert lengths == [60 * 32_000] * 60, lengths[-3:]
    assert report["dtypes"] == ["float32"]
    assert 0.2 < report["min_rms"] <= report["max_rms"] < 0.22  # 0.3 / sqrt(2): every chunk carries the tone


@pytest.mark.parametrize("chunk_duration", [0.0, -1.0, math.nan, math.inf])
def test_stream_rejects_bad_chunk_duration(tmp_path, chunk_duration):
    path = write_audio(tmp_path / "a.wav", tone(440, sample_rate=16_000, duration=0.5), 16_000)
    with pytest.raises(ParameterError):
        stream(path, chunk_duration=chunk_duration)  # raised by the call, before any iteration


# ------------------------------------------------------------------------------------------------ bad input


def _good_file(tmp_path: Path, ext: str, seconds: float = 2.0) -> Path:
    y = tone_and_noise(np.random.default_rng(3), sample_rate=16_000, duration=seconds)
    return write_audio(tmp_path / f"good{ext}", y, 16_000)


def _damaged_copy(good: Path, name: str, edit) -> Path:
    data = bytearray(good.read_bytes())
    path = good.with_name(name)
    path.write_bytes(bytes(edit(data)))
    return path


def make_missing(tmp_path, ext):
    return tmp_path / f"missing{ext}"


def make_directory(tmp_path, ext):
    path = tmp_path / f"folder{ext}"
    path.mkdir()
    return path


def make_empty(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.touch()
    return path


def make_zero_length(tmp_path, ext):
    """A valid header and no samples (libsndfile writes 0-byte FLAC/MP3 files, so only WAV and Ogg)."""
    path = tmp_path / f"zero{ext}"
    fmt, subtype = io._WRITE_FORMATS[ext]
    with sf.SoundFile(path, "w", samplerate=16_000, channels=1, format=fmt, subtype=subtype):
        pass
    assert path.stat().st_size > 0
    return path


def make_truncated(tmp_path, ext):
    return _damaged_copy(_good_file(tmp_path, ext), f"truncated{ext}", lambda b: b[: len(b) // 2])


def make_truncated_tail(tmp_path, ext):
    """Only the last 3 % missing: an Ogg cut inside its final page still shows that page's end-of-stream flag."""
    return _damaged_copy(_good_file(tmp_path, ext), f"tail{ext}", lambda b: b[: len(b) * 97 // 100])


def _garbage(data: bytearray) -> bytearray:
    middle = len(data) // 2
    data[middle : middle + 4096] = np.random.default_rng(11).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return data


def make_corrupt(tmp_path, ext):
    return _damaged_copy(_good_file(tmp_path, ext, seconds=10.0), f"corrupt{ext}", _garbage)


def make_text(tmp_path, ext):
    path = tmp_path / f"notes{ext}"
    path.write_text("species,start_time\nparus major,1.5\n" * 40)
    return path


def make_nan(tmp_path, ext):
    y = tone(440, sample_rate=16_000, duration=1.0)
    y[8_000] = np.nan
    path = tmp_path / f"nan{ext}"
    sf.write(path, y, 16_000, subtype="FLOAT")  # write_audio refuses NaN, so libsndfile directly
    return path


# kind -> (maker, extensions, cause pattern, functions that must detect it)
BAD_INPUTS = {
    "missing": (make_missing, [".wav"], "file not found", ("info", "load", "stream")),
    "directory": (make_directory, [".wav"], "directory", ("info", "load", "stream")),
    "empty": (make_empty, FORMATS, r"empty file \(0 bytes\)", ("info", "load", "stream")),
    "zero_length": (make_zero_length, [".wav", ".ogg"], "zero length", ("info", "load", "stream")),
    "truncated": (make_truncated, FORMATS, "truncated", ("info", "load", "stream")),
    "truncated_tail": (make_truncated_tail, FORMATS, "truncated", ("info", "load", "stream")),
    # info reads the header and the end only; PCM WAV has no checksum, so it is left out (see io.py).
    "corrupt": (make_corrupt, [".flac", ".ogg", ".mp3"], "corrupt|cannot decode", ("load", "stream")),
    "text": (make_text, FORMATS, "not an audio file", ("info", "load", "stream")),
    "nan": (make_nan, [".wav"], "NaN", ("load", "stream")),
}
BAD_CASES = [
    pytest.param(kind, ext, func, id=f"{kind}-{ext[1:]}-{func}")
    for kind, (_, exts, _, funcs) in BAD_INPUTS.items()
    for ext in exts
    for func in funcs
]


def _call(func: str, path: Path) -> None:
    if func == "stream":
        for _ in stream(path, chunk_duration=0.5):
            pass
    else:
        getattr(io, func)(path)


@pytest.mark.parametrize("kind,ext,func", BAD_CASES)
def test_bad_input_raises_audio_load_error_with_path_and_cause(tmp_path, kind, ext, func):
    maker, _, cause, _ = BAD_INPUTS[kind]
    path = maker(tmp_path, ext)

    with pytest.raises(AudioLoadError, match=cause) as caught:
        _call(func, path)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert caught.value.path == str(path)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "zero_length", "text"])
def test_stream_rejects_unreadable_file_at_call_time(tmp_path, kind):
    maker, exts, cause, _ = BAD_INPUTS[kind]
    with pytest.raises(AudioLoadError, match=cause):
        stream(maker(tmp_path, exts[-1]))  # no iteration needed


@pytest.mark.parametrize(
    "damage,ext", [("truncated", ext) for ext in FORMATS] + [("corrupt", ext) for ext in BAD_INPUTS["corrupt"][1]]
)
def test_stream_yields_decodable_prefix_then_raises(tmp_path, ext, damage):
    """As documented: the audio before the damage comes out (at most one read block short), then the error."""
    sample_rate, seconds = 16_000, 40.0  # 2.4 read blocks; the damage sits at ~20 s, past the first block
    y = tone_and_noise(np.random.default_rng(5), sample_rate=sample_rate, duration=seconds)
    good = write_audio(tmp_path / f"good{ext}", y, sample_rate)
    edit = (lambda b: b[: len(b) // 2]) if damage == "truncated" else _garbage
    path = _damaged_copy(good, f"{damage}{ext}", edit)

    chunks, err = collect(stream(path, sample_rate=None, chunk_duration=1.0))

    assert isinstance(err, AudioLoadError) and str(err).startswith(f"{path}: ")
    prefix = np.concatenate(chunks)
    reference = load(good, sample_rate=None)
    assert seconds / 2 * sample_rate - io._READ_BLOCK_FRAMES - 4_096 <= len(prefix) < len(reference)
    np.testing.assert_allclose(prefix, reference[: len(prefix)], atol=1e-5)


def test_info_does_not_decode_so_misses_damage_in_the_middle(tmp_path):
    """Documented limit: info checks the header and the end of the file, not every sample."""
    path = make_corrupt(tmp_path, ".flac")
    assert info(path).num_samples == 10 * 16_000
    with pytest.raises(AudioLoadError, match="cannot decode"):
        load(path)


def test_ogg_damage_is_found_by_page_checksum(tmp_path):
    """Flip one byte inside an Ogg page: libvorbis skips the page silently; the CRC walk does not."""
    good = _good_file(tmp_path, ".ogg", seconds=10.0)

    def flip(data: bytearray) -> bytearray:
        data[len(data) // 2] ^= 0x01
        return data

    path = _damaged_copy(good, "flipped.ogg", flip)
    for func in ("load", "stream"):
        with pytest.raises(AudioLoadError, match="corrupt Ogg stream"):
            _call(func, path)


def test_wav_with_unknown_size_placeholder_is_not_truncated(tmp_path):
    """Streaming recorders write 0xFFFFFFFF as the RIFF/data size; that is not damage."""
    good = _good_file(tmp_path, ".wav", seconds=1.0)

    def unknown_sizes(data: bytearray) -> bytearray:
        data[4:8] = b"\xff\xff\xff\xff"
        return data

    path = _damaged_copy(good, "recorder.wav", unknown_sizes)
    np.testing.assert_array_equal(load(path, sample_rate=None), load(good, sample_rate=None))


# ------------------------------------------------------------------------------------------------ write_audio


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", [16_000, 44_100])
def test_write_audio_round_trips_within_codec_tolerance(tmp_path, ext, channels, sample_rate):
    y = tone_channels(700.0, [0.5, 0.3][:channels], sample_rate=sample_rate, duration=2.0)

    path = write_audio(tmp_path / "sub" / f"rt{ext}", y, sample_rate)  # creates the folder

    assert path == tmp_path / "sub" / f"rt{ext}"
    decoded, rate = sf.read(path, dtype="float32")
    assert rate == sample_rate and decoded.shape == y.shape
    if ext in LOSSY:
        assert snr_db(y, decoded) > 20
    else:
        np.testing.assert_allclose(decoded, y, atol=PCM16_STEP)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left behind


def test_write_audio_float_subtype_is_exact_and_clips(tmp_path, rng):
    y = rng.uniform(-0.99, 0.99, 3_000).astype(np.float32)
    y[[10, 20]] = [1.5, -3.0]

    path = write_audio(tmp_path / "f.wav", y, 8_000, subtype="FLOAT")

    decoded, _ = sf.read(path, dtype="float32")
    expected = y.copy()
    expected[[10, 20]] = [1.0, -1.0]
    np.testing.assert_array_equal(decoded, expected)


def test_write_audio_writes_in_blocks(tmp_path, monkeypatch):
    calls: list[int] = []
    original = sf.SoundFile.write

    def spy(self, data):
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", spy)
    n = int(2.5 * io._WRITE_BLOCK_FRAMES)

    write_audio(tmp_path / "blocks.flac", tone(440, sample_rate=16_000, duration=n / 16_000), 16_000)

    assert calls == [io._WRITE_BLOCK_FRAMES, io._WRITE_BLOCK_FRAMES, n - 2 * io._WRITE_BLOCK_FRAMES]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
@pytest.mark.parametrize("failure", ["nan_in_second_block", "writer_error", "interrupt"])
def test_write_audio_is_atomic_on_failure(tmp_path, monkeypatch, failure, existing):
    path = tmp_path / "out.wav"
    if existing:
        path.write_bytes(b"previous content")
    y = tone(440, sample_rate=16_000, duration=3 * io._WRITE_BLOCK_FRAMES / 16_000)
    expected_error: type[BaseException] = ParameterError
    if failure == "nan_in_second_block":
        y[io._WRITE_BLOCK_FRAMES + 5] = np.nan
    else:
        original, calls = sf.SoundFile.write, []
        expected_error = OSError if failure == "writer_error" else KeyboardInterrupt

        def fail_on_second_block(self, data):
            calls.append(1)
            if len(calls) == 2:
                raise expected_error("disk full") if failure == "writer_error" else KeyboardInterrupt()
            return original(self, data)

        monkeypatch.setattr(sf.SoundFile, "write", fail_on_second_block)

    with pytest.raises(expected_error):
        write_audio(path, y, 16_000)

    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.wav"] if existing else [])
    if existing:
        assert path.read_bytes() == b"previous content"


def test_write_audio_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_audio(tmp_path / "a.wav", tone(440, sample_rate=8_000, duration=0.1), 8_000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


SILENCE = np.zeros(100, np.float32)


@pytest.mark.parametrize(
    "name,samples,kwargs",
    [
        pytest.param("a.txt", SILENCE, {}, id="txt"),
        pytest.param("a.m4a", SILENCE, {}, id="m4a"),
        pytest.param("a.aiff", SILENCE, {}, id="aiff-read-only"),
        pytest.param("noextension", SILENCE, {}, id="no-extension"),
        pytest.param("a.wav", np.zeros(0, np.float32), {}, id="empty"),
        pytest.param("a.wav", np.zeros((0, 2), np.float32), {}, id="empty-stereo"),
        pytest.param("a.wav", np.zeros((100, 0), np.float32), {}, id="zero-channels"),
        pytest.param("a.wav", np.zeros((10, 2, 2), np.float32), {}, id="3d"),
        pytest.param("a.wav", np.zeros(100, np.int16), {}, id="int16"),
        pytest.param("a.wav", np.full(100, np.inf, np.float32), {}, id="inf"),
        pytest.param("a.wav", SILENCE, {"sample_rate": 0}, id="rate-0"),
        pytest.param("a.wav", SILENCE, {"sample_rate": 16_000.0}, id="rate-float"),
        pytest.param("a.wav", SILENCE, {"subtype": "VORBIS"}, id="wav-vorbis"),
        pytest.param("a.mp3", SILENCE, {"sample_rate": 96_000}, id="mp3-96k"),
        pytest.param("a.mp3", np.zeros((100, 4), np.float32), {}, id="mp3-4ch"),
    ],
)
def test_write_audio_rejects_bad_input(tmp_path, name, samples, kwargs):
    kwargs = {"sample_rate": 16_000, **kwargs}
    with pytest.raises(ParameterError):
        write_audio(tmp_path / name, samples, **kwargs)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ absurd rates


def _wav_bytes(sample_rate: int, num_frames: int) -> bytes:
    """A 16-bit mono PCM WAV written by hand, so that its header may claim any rate."""
    import struct

    data = struct.pack(f"<{num_frames}h", *(np.arange(num_frames) % 2000 - 1000))
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, (sample_rate * 2) & 0xFFFFFFFF, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


class _NoResampling:
    """Stands in for soxr: resampling a 1-Hz file to 32 kHz would try to allocate ~33 GB per block."""

    def __getattr__(self, name):
        raise AssertionError(f"soxr.{name} called for a file that should have been refused")


@pytest.mark.parametrize("rate", [1, 8, 999, 1_000_001, 2_000_000_000])
def test_a_header_with_an_absurd_sample_rate_is_refused_before_resampling(tmp_path, monkeypatch, rate):
    path = tmp_path / "crafted.wav"
    path.write_bytes(_wav_bytes(rate, 4_000))
    assert sf.info(str(path)).samplerate == rate  # libsndfile itself takes the header at its word
    monkeypatch.setattr(io, "soxr", _NoResampling())
    message = rf"crafted.wav: implausible sample rate {rate} Hz in the header \(accepted: 1000 to 1000000 Hz\)"
    for read in (info, load, lambda p: list(stream(p))):
        with pytest.raises(AudioLoadError, match=message):
            read(path)


def test_the_lowest_accepted_rate_streams_in_bounded_blocks(tmp_path, monkeypatch):
    path = tmp_path / "low.wav"
    path.write_bytes(_wav_bytes(1_000, 3_000))  # 3 s at 1 kHz: 32 times more samples out than in
    reference = load(path)  # one piece
    inputs = []
    real = io.soxr.ResampleStream

    class Recording:
        """soxr's output buffer for one call is sized from the call's input (times the ratio): bound the input."""

        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)

        def resample_chunk(self, x, last=False):
            inputs.append(len(x))
            return self.inner.resample_chunk(x, last=last)

    monkeypatch.setattr(io.soxr, "ResampleStream", Recording)
    monkeypatch.setattr(io, "_MAX_BLOCK_OUTPUT", 4_096)
    joined = np.concatenate(list(stream(path, sample_rate=32_000, chunk_duration=1.0)))
    assert max(inputs) == 4_096 * 1_000 // 32_000 and sum(inputs) == 3_000  # 128 frames a block: at most 4096 samples out
    assert abs(len(joined) - len(reference)) <= 2
    n = min(len(joined), len(reference))
    np.testing.assert_allclose(joined[:n], reference[:n], atol=1e-4)


@pytest.mark.parametrize("sample_rate", [999, 1_000_001])
def test_an_absurd_target_rate_is_a_parameter_error(tmp_path, sample_rate):
    path = write_audio(tmp_path / "a.wav", tone(440, sample_rate=16_000, duration=0.5), 16_000)
    with pytest.raises(ParameterError, match="sample_rate must be between 1000 and 1000000 Hz"):
        stream(path, sample_rate=sample_rate)
    with pytest.raises(ParameterError, match="sample_rate must be between"):
        load(path, sample_rate=sample_rate)
