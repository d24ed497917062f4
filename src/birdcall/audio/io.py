"""Reading and writing audio files.

Everything returns mono ``float32`` at the requested ``sample_rate`` (default 32 kHz, the BirdCLEF rate):
libsndfile (via soundfile) decodes WAV, FLAC, OGG/Vorbis and MP3, channels are averaged, and soxr resamples.
Every failure is an :class:`~birdcall.errors.AudioLoadError` whose one-line message is ``"<path>: <cause>"``.

libsndfile happily returns a prefix of a truncated or damaged file without an error, so after decoding we
check three things it does tell us: the number of frames decoded against the number the header declares,
the "(should be ...)" size corrections in its header log (WAV/AIFF), and the end-of-stream flag of the last
Ogg page (a cut Ogg file has none).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioLoadError, ParameterError
from ..types import Pathlike

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "AudioInfo",
    "info",
    "load",
    "stream",
    "write_audio",
]

DEFAULT_SAMPLE_RATE = 32_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
_WRITE_FORMATS = {  # extension -> (libsndfile format, subtype)
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
_READ_BLOCK_FRAMES = 1 << 18  # ~8 s at 32 kHz: the unit of work of the streaming reader
_WRITE_BLOCK_FRAMES = 1 << 16  # libsndfile's Vorbis encoder can crash on one very large write


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says (before any resampling)."""

    path: str
    sample_rate: int
    num_samples: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def _check_path(path: Pathlike) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioLoadError(p, "file not found")
    if p.is_dir():
        raise AudioLoadError(p, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioLoadError(p, "empty file (0 bytes)")
    return p


def _cause(err: Exception) -> str:
    text = str(err)
    if "Format not recognised" in text or "not recognised" in text:
        return "not an audio file (format not recognised by libsndfile)"
    if "malformed" in text:
        return "corrupt or truncated audio (libsndfile: file is malformed)"
    if ": " in text and text.startswith("Error opening"):
        text = text.split(": ", 1)[1]
    return f"cannot decode audio ({text.strip()})"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sf.SoundFile]:
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioLoadError(path, _cause(err)) from None
    with handle:
        if handle.frames <= 0:
            raise AudioLoadError(path, "contains no audio samples (zero length)")
        if handle.samplerate <= 0 or handle.channels <= 0:
            raise AudioLoadError(path, f"invalid header (sample rate {handle.samplerate}, {handle.channels} channels)")
        yield handle


def info(path: Pathlike) -> AudioInfo:
    """Read the header of ``path``.

    Raises:
        AudioLoadError: missing, empty, zero-length or undecodable file.
    """
    p = _check_path(path)
    with _open(p) as f:
        return AudioInfo(str(p), int(f.samplerate), int(f.frames), int(f.channels), str(f.format))


def _header_damage(path: Path, handle: sf.SoundFile) -> str | None:
    """Truncation evidence that does not need a full decode, or None."""
    if "should be" in handle.extra_info:  # libsndfile corrected a chunk size that runs past the end of file
        return "truncated file (header sizes run past the end of the file)"
    if handle.format == "OGG":
        with open(path, "rb") as raw:
            size = raw.seek(0, os.SEEK_END)
            raw.seek(max(0, size - 65536))
            tail = raw.read()
        last = tail.rfind(b"OggS")
        if last < 0 or last + 5 >= len(tail) or not tail[last + 5] & 0x04:
            return "truncated Ogg stream (last page has no end-of-stream flag)"
    return None


def _to_mono(block: np.ndarray) -> np.ndarray:
    return block if block.ndim == 1 else block.mean(axis=1, dtype=np.float32)


def _check_rate(sample_rate: int | None) -> None:
    if sample_rate is not None and (not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0):
        raise ParameterError(f"sample_rate must be a positive integer or None, got {sample_rate!r}")


def load(
    path: Pathlike,
    *,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` (None keeps the file's rate).

    Args:
        path: WAV, FLAC, OGG/Vorbis, MP3 or any other format libsndfile reads.
        sample_rate: target rate in Hz; soxr (high quality) resamples when the file differs.
        offset: start time in seconds.
        duration: seconds to read from ``offset``; None reads to the end.

    Returns:
        ``(num_samples,)`` float32 array.

    Raises:
        AudioLoadError: the file is missing, empty, zero-length, not audio, corrupt or truncated.
        ParameterError: invalid ``sample_rate``, ``offset`` or ``duration``.
    """
    _check_rate(sample_rate)
    if offset < 0 or (duration is not None and duration <= 0):
        raise ParameterError(f"offset must be >= 0 and duration > 0, got offset={offset}, duration={duration}")
    p = _check_path(path)
    with _open(p) as f:
        damage = _header_damage(p, f)
        if damage:
            raise AudioLoadError(p, damage)
        start = int(round(offset * f.samplerate))
        if start >= f.frames:
            raise AudioLoadError(p, f"offset {offset:.3f} s is past the end ({f.frames / f.samplerate:.3f} s)")
        wanted = f.frames - start if duration is None else min(int(round(duration * f.samplerate)), f.frames - start)
        try:
            if start:
                f.seek(start)
            data = f.read(wanted, dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioLoadError(p, _cause(err)) from None
        native_rate = f.samplerate
    if len(data) < wanted:
        raise AudioLoadError(p, f"truncated or corrupt: decoded {len(data)} of {wanted} samples")
    y = np.ascontiguousarray(_to_mono(data), dtype=np.float32)
    if sample_rate is not None and sample_rate != native_rate:
        y = soxr.resample(y, native_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if not np.isfinite(y).all():
        raise AudioLoadError(p, "decoded samples contain NaN or infinity")
    return y


def stream(
    path: Pathlike,
    *,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    chunk_duration: float = 60.0,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 chunks of ``chunk_duration`` seconds (the last may be shorter).

    Memory stays bounded by the chunk size whatever the file length: the file is decoded block by block and
    resampled with soxr's streaming resampler, so concatenating the chunks gives the same signal as
    :func:`load` (up to resampler edge effects of a few samples at the very end).

    Raises:
        AudioLoadError: as :func:`load`. A file that turns out to be truncated raises after yielding the
            audio that could be decoded, so a caller can keep what it already processed.
    """
    _check_rate(sample_rate)
    if chunk_duration <= 0:
        raise ParameterError(f"chunk_duration must be > 0, got {chunk_duration}")
    p = _check_path(path)
    with _open(p) as f:
        native_rate = f.samplerate
        out_rate = sample_rate or native_rate
        chunk = max(1, int(round(chunk_duration * out_rate)))
        resampler = None if out_rate == native_rate else soxr.ResampleStream(native_rate, out_rate, 1, dtype="float32", quality="HQ")
        damage = _header_damage(p, f)
        pending: list[np.ndarray] = []
        pending_len = 0
        decoded = 0
        while True:
            try:
                block = f.read(_READ_BLOCK_FRAMES, dtype="float32", always_2d=False)
            except (sf.LibsndfileError, RuntimeError) as err:
                damage = _cause(err)
                block = np.zeros(0, dtype=np.float32)
            decoded += len(block)
            last = len(block) < _READ_BLOCK_FRAMES
            y = _to_mono(block).astype(np.float32, copy=False)
            if resampler is not None:
                y = resampler.resample_chunk(y, last=last)
            if len(y):
                if not np.isfinite(y).all():
                    raise AudioLoadError(p, "decoded samples contain NaN or infinity")
                pending.append(y)
                pending_len += len(y)
            while pending_len >= chunk:
                buf = np.concatenate(pending)
                yield buf[:chunk]
                rest = buf[chunk:]
                pending, pending_len = ([rest] if len(rest) else []), len(rest)
            if last:
                break
        if pending_len:
            yield np.concatenate(pending)
        if damage is None and decoded < f.frames:
            damage = f"truncated or corrupt: decoded {decoded} of {f.frames} samples"
        if damage:
            raise AudioLoadError(p, damage)


def write_audio(path: Pathlike, samples: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``samples`` (``(num_samples,)`` or ``(num_samples, channels)``) atomically, in blocks.

    The format follows the extension (.wav, .flac, .ogg, .mp3). The file is written under a temporary name in
    the same folder and renamed, so a reader never sees a half-written file.

    Returns:
        The final path.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise ParameterError(f"{p}: cannot write audio with extension {ext!r}; use one of {sorted(_WRITE_FORMATS)}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise ParameterError(f"{p}: expected a non-empty (num_samples,) or (num_samples, channels) array, got {samples.shape}")
    fmt, default_subtype = _WRITE_FORMATS[ext]
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=ext + ".tmp", dir=p.parent)
    os.close(fd)
    try:
        with sf.SoundFile(tmp, "w", samplerate=int(sample_rate), channels=channels, format=fmt, subtype=subtype or default_subtype) as out:
            for i in range(0, samples.shape[0], _WRITE_BLOCK_FRAMES):
                out.write(np.clip(samples[i : i + _WRITE_BLOCK_FRAMES], -1.0, 1.0))
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p
