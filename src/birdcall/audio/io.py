"""Reading and writing audio files.

Everything returns mono ``float32`` at the requested ``sample_rate`` (default 32 kHz, the BirdCLEF rate):
libsndfile (via soundfile) decodes WAV, FLAC, OGG/Vorbis and MP3, channels are averaged, and soxr resamples.
Every failure is an :class:`~birdcall.errors.AudioLoadError` whose one-line message is ``"<path>: <cause>"``.

libsndfile happily returns a prefix of a truncated or damaged file without an error, so we check what it
does tell us, and a little more:

* the "(should be ...)" size corrections in its header log (a WAV/AIFF whose chunk sizes run past the end);
* that the last declared sample can be read (a cut FLAC fails this cheap seek to the end);
* for MP3, the stream size in the Xing/Info header against the file size;
* the Ogg pages: the last one must be complete and carry the end-of-stream flag, and, when decoding, every
  page's CRC and sequence number is verified (libvorbis skips a damaged page silently);
* after decoding, the number of samples decoded against the number the header declares;
* the sample rate in the header must lie in [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`]: a damaged
  header claiming, say, 1 Hz would otherwise make the resampler expand every sample 32 000 times.

What cannot be detected: damage inside the payload of a format without checksums (PCM WAV/AIFF bytes, or
MP3 frame data that still parses) decodes to wrong samples without any error. :func:`info` reads only the
header and the end of the file, so damage in the middle of a file shows up only in :func:`load` and
:func:`stream`, which decode it.

MP3 is never seeked and never read through ``SoundFile.read`` after the first block: both restart mpg123
without its bit reservoir and the audio that follows decodes wrongly (see :func:`_read_frames`).

(About 600 lines on purpose: one concern, decoding with the damage checks of each format, which share the
header and page readers; split by format they would repeat them.)
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .._validate import check_int, is_int, is_number
from ..errors import AudioLoadError, ParameterError
from ..types import Pathlike

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
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
_SFE_SYSTEM = 2  # libsndfile's error code for an OS-level failure (permissions, missing folder, disk full)
# Sample rates a recording may declare, Hz. Below 1 kHz no audio format in use records sound (telephony's 8 kHz
# is the lowest common rate, bird recorders use 16 kHz and up); above 1 MHz no microphone recorder goes
# (ultrasonic bat detectors stop at 384-768 kHz). A header outside is damaged or crafted, and worse than
# useless: resampling 1 Hz to 32 kHz expands each sample 32 000 times (a 2**18-frame block to ~33 GB).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_000_000
# At most this many output samples per block of the streaming reader (16 MiB of float32): a block is shortened
# when upsampling would expand it further (more than 16 times: below 2 kHz into 32 kHz), so the memory of one
# block stays bounded whatever the two rates.
_MAX_BLOCK_OUTPUT = 1 << 22


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


# --------------------------------------------------------------------------------------------------- opening


def _check_path(path: Pathlike) -> Path:
    p = Path(path)
    if p.is_dir():
        raise AudioLoadError(p, "is a directory, not an audio file")
    if not p.exists():
        raise AudioLoadError(p, "file not found")
    if not p.is_file():  # a FIFO or device would block or stream forever
        raise AudioLoadError(p, "not a regular file")
    try:
        with open(p, "rb"):
            pass
    except OSError as err:
        raise AudioLoadError(p, f"cannot read file ({err.strerror or err})") from None
    if p.stat().st_size == 0:
        raise AudioLoadError(p, "empty file (0 bytes)")
    return p


def _cause(err: Exception) -> str:
    text = str(getattr(err, "error_string", None) or err).strip()
    if text.startswith("Error opening") and ": " in text:
        text = text.split(": ", 1)[1]
    text = re.sub(r"^Error\s*:\s*", "", text)
    if "not recognised" in text:
        return "not an audio file (format not recognised by libsndfile)"
    if "does not exist or is not a regular file" in text:  # what libsndfile says when mpg123 finds no MPEG frame
        return "not an audio file (no decodable audio stream found)"
    if "malformed" in text:
        return "corrupt or truncated audio (libsndfile: file is malformed)"
    return f"cannot decode audio ({text})"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sf.SoundFile]:
    """Open ``path`` for reading; raise AudioLoadError for anything that is not a non-empty audio stream."""
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioLoadError(path, _cause(err)) from None
    with handle:
        if handle.samplerate <= 0 or handle.channels <= 0:
            raise AudioLoadError(path, f"invalid header (sample rate {handle.samplerate}, {handle.channels} channels)")
        if not MIN_SAMPLE_RATE <= handle.samplerate <= MAX_SAMPLE_RATE:
            raise AudioLoadError(
                path, f"implausible sample rate {handle.samplerate} Hz in the header (accepted: {MIN_SAMPLE_RATE} to "
                f"{MAX_SAMPLE_RATE} Hz); the header is damaged or the file is not a recording"
            )
        if handle.frames <= 0:
            damage = _ogg_tail_damage(path) if handle.format == "OGG" else None
            raise AudioLoadError(path, damage or "contains no audio samples (zero length)")
        yield handle


# ------------------------------------------------------------------------------------------------ damage checks

_OGG_HEADER = struct.Struct("<4sBBqIIIB")  # capture "OggS", version, flags, granule, serial, sequence, crc, segments
_OGG_EOS = 0x04
_OGG_MAX_PAGE = _OGG_HEADER.size + 255 + 255 * 255
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04c11db7, MSB first, init 0, no final xor) of a page whose CRC field is zero.

    That is zlib's reflected CRC-32 run on bit-reversed bytes with the register started at 0, bit-reversed:
    C speed, no table in Python.
    """
    register = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{register:032b}"[::-1], 2)


def _ogg_page_at(data: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """``(length, flags, serial, sequence)`` of a complete, CRC-valid page at ``data[pos:]``, else None."""
    if len(data) - pos < _OGG_HEADER.size:
        return None
    capture, version, flags, _granule, serial, sequence, crc, segments = _OGG_HEADER.unpack_from(data, pos)
    end_of_table = pos + _OGG_HEADER.size + segments
    if capture != b"OggS" or version != 0 or len(data) < end_of_table:
        return None
    length = _OGG_HEADER.size + segments + sum(data[pos + _OGG_HEADER.size : end_of_table])
    if len(data) - pos < length:
        return None
    page = bytearray(data[pos : pos + length])
    page[22:26] = b"\0\0\0\0"
    return (length, flags, serial, sequence) if _ogg_crc(bytes(page)) == crc else None


def _ogg_tail_damage(path: Path) -> str | None:
    """Cheap check: the last valid page in the final 64 KiB must carry the end-of-stream flag."""
    with open(path, "rb") as raw:
        size = raw.seek(0, os.SEEK_END)
        raw.seek(max(0, size - _OGG_MAX_PAGE - 1))
        tail = raw.read()
    pos = tail.rfind(b"OggS")
    while pos >= 0:  # walk back over a cut last page (or an "OggS" that is payload) to the last valid page
        page = _ogg_page_at(tail, pos)
        if page is not None:
            return None if page[1] & _OGG_EOS else "truncated Ogg stream (last page has no end-of-stream flag)"
        pos = tail.rfind(b"OggS", 0, pos)
    return "truncated or corrupt Ogg stream (no valid page at the end of the file)"


def _ogg_damage(path: Path) -> tuple[str | None, int | None]:
    """Full check, page by page (bounded memory): CRCs, per-stream sequence numbers, end-of-stream flags.

    Returns:
        ``(cause, good_frames)``: cause is None for an intact file; good_frames is the granule position of
        the last valid page before the damage (the samples that decode correctly), None if unknown.
    """
    next_sequence: dict[int, int] = {}
    open_streams: set[int] = set()
    good_frames: int | None = None
    with open(path, "rb") as raw:
        pos = 0
        while True:
            head = raw.read(_OGG_HEADER.size)
            if not head:
                break
            if len(head) == _OGG_HEADER.size and head[:4] == b"OggS":
                segments = head[-1]
                table = raw.read(segments)
                body = raw.read(sum(table))
                page = _ogg_page_at(head + table + body, 0)
            else:
                page = None
            if page is None:
                if next_sequence and not open_streams:
                    break  # bytes after every stream has ended: not ours to judge
                if len(head) < _OGG_HEADER.size or head[:4] == b"OggS" and raw.tell() >= os.fstat(raw.fileno()).st_size:
                    return f"truncated Ogg stream (incomplete page at byte {pos})", good_frames
                return f"corrupt Ogg stream (bad page or checksum at byte {pos})", good_frames
            length, flags, serial, sequence = page
            expected = next_sequence.get(serial)
            if expected is not None and sequence != expected:
                cause = f"corrupt Ogg stream (page {sequence} follows page {expected - 1} at byte {pos}: pages missing)"
                return cause, good_frames
            next_sequence[serial] = sequence + 1
            granule = _OGG_HEADER.unpack_from(head)[3]
            if granule >= 0 and len(next_sequence) == 1:  # -1: no packet ends on this page
                good_frames = granule
            open_streams.add(serial)
            if flags & _OGG_EOS:
                open_streams.discard(serial)
            pos += length
    if open_streams or not next_sequence:
        return "truncated Ogg stream (last page has no end-of-stream flag)", good_frames
    return None, None


def _mp3_damage(path: Path) -> str | None:
    """Compare the stream size in the Xing/Info header (LAME and most VBR encoders write one) with the file.

    1 % slack, as mpg123 allows, for encoders that count tags; :func:`load` and :func:`stream` also compare the
    decoded sample count with the declared one. A file without that header has no declared size to check.
    """
    with open(path, "rb") as raw:
        size = raw.seek(0, os.SEEK_END)
        raw.seek(0)
        head = raw.read(10)
        start = 0
        if len(head) == 10 and head[:3] == b"ID3":  # skip an ID3v2 tag (syncsafe size, optional footer)
            start = 10 + sum((head[6 + i] & 0x7F) << (7 * (3 - i)) for i in range(4)) + (10 if head[5] & 0x10 else 0)
        raw.seek(start)
        first = raw.read(4096)
    sync = next((i for i in range(len(first) - 1) if first[i] == 0xFF and first[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return None
    for tag in (b"Xing", b"Info"):
        at = first.find(tag, sync + 4, sync + 4 + 32 + 4)
        if at >= 0 and len(first) >= at + 16:
            flags = int.from_bytes(first[at + 4 : at + 8], "big")
            if not flags & 0x2:
                return None
            declared = int.from_bytes(first[at + 8 + (4 if flags & 0x1 else 0) :][:4], "big")
            actual = size - start - sync
            if actual < 0.99 * declared:
                return f"truncated MP3 (header declares {declared} bytes of audio, only {actual} present)"
            return None
    return None


_SHOULD_BE = re.compile(r"^\s*(\S+)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_SIZE_PLACEHOLDERS = {0, 0xFFFFFFFF, 0x7FFFFFFF}  # "unknown size" written by streaming recorders


def _damage(path: Path, handle: sf.SoundFile, *, full: bool) -> tuple[str | None, int | None]:
    """Evidence that ``path`` is truncated or corrupt, or None; ``full`` also walks every Ogg page.

    Returns:
        ``(cause, good_frames)``: good_frames, when known, is how many samples decode before the damage.
    """
    for chunk, declared, actual in _SHOULD_BE.findall(handle.extra_info):
        if int(declared) > int(actual) and int(declared) not in _SIZE_PLACEHOLDERS:
            return f"truncated file ({chunk.strip()} chunk declares {declared} bytes, only {actual} present)", None
    if handle.format == "OGG":
        damage, good_frames = _ogg_damage(path) if full else (_ogg_tail_damage(path), None)
        if damage:
            return damage, good_frames if handle.subtype == "VORBIS" else None
    if handle.format == "MP3":  # a seek would print mpg123 bit-reservoir warnings; the Xing header suffices
        return _mp3_damage(path), None
    try:  # can the last declared sample be read? A separate handle leaves `handle` where it was.
        with sf.SoundFile(str(path)) as probe:
            probe.seek(probe.frames - 1)
            readable = len(probe.read(1, dtype="float32")) == 1
    except (sf.LibsndfileError, RuntimeError):
        readable = False
    if not readable:
        return f"truncated file (the header declares {handle.frames} samples, the last ones cannot be read)", None
    return None, None


# ------------------------------------------------------------------------------------------------ reading


def _to_mono(block: np.ndarray) -> np.ndarray:
    return block if block.ndim == 1 else block.mean(axis=1, dtype=np.float32)


def _check_rate(sample_rate: int | None) -> None:
    if sample_rate is None:
        return
    if not is_int(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"sample_rate must be a positive integer or None, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(f"sample_rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {sample_rate}")


def _is_number(x: object) -> bool:
    return is_number(x) and math.isfinite(x)


def _read_frames(handle: sf.SoundFile, frames: int) -> np.ndarray:
    """Read up to ``frames`` frames as float32: ``(n,)`` for mono, ``(n, channels)`` otherwise.

    MP3 goes straight to libsndfile. ``SoundFile.read`` seeks to its own position after every read, libsndfile
    hands that seek to mpg123, and mpg123 restarts decoding there without the bit reservoir: everything read
    after the first block comes out wrong (mostly silence). Reading without seeking decodes correctly.
    """
    if handle.format != "MP3":
        return handle.read(frames, dtype="float32", always_2d=False)
    out = np.empty((max(frames, 0), handle.channels), dtype=np.float32)
    got = sf._snd.sf_readf_float(handle._file, sf._ffi.cast("float *", sf._ffi.from_buffer(out)), len(out))
    sf._error_check(handle._errorcode)
    out = out[:got]
    return out[:, 0] if handle.channels == 1 else out


def _skip_to(handle: sf.SoundFile, start: int) -> None:
    """Position ``handle`` at frame ``start``.

    An MP3 seek loses the bit reservoir (see :func:`_read_frames`), so for MP3 we decode from the start and
    discard instead. FLAC, Ogg and PCM seek exactly.
    """
    if handle.format != "MP3":
        handle.seek(start)
        return
    while start > 0:
        got = len(_read_frames(handle, min(start, _READ_BLOCK_FRAMES)))
        if got == 0:
            return
        start -= got


def info(path: Pathlike) -> AudioInfo:
    """Read the header of ``path`` and check that the file is not truncated.

    Only the header and the end of the file are read: damage in the middle of the file is found by
    :func:`load` and :func:`stream`, which decode it.

    Raises:
        AudioLoadError: missing, empty, zero-length, not audio, or truncated file, or a header whose sample
            rate is outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE].
    """
    p = _check_path(path)
    with _open(p) as f:
        damage, _ = _damage(p, f, full=False)
        if damage:
            raise AudioLoadError(p, damage)
        return AudioInfo(str(p), int(f.samplerate), int(f.frames), int(f.channels), str(f.format))


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
        sample_rate: target rate in Hz (MIN_SAMPLE_RATE to MAX_SAMPLE_RATE); soxr (high quality) resamples when the
            file differs.
        offset: start time in seconds.
        duration: seconds to read from ``offset``; None reads to the end.

    Returns:
        ``(num_samples,)`` float32 array.

    Raises:
        AudioLoadError: the file is missing, empty, zero-length, not audio, corrupt, truncated, or decodes to
            NaN/infinity. A damaged file raises even when the requested part is intact.
        ParameterError: invalid ``sample_rate``, ``offset`` or ``duration``.
    """
    _check_rate(sample_rate)
    if not _is_number(offset) or offset < 0 or (duration is not None and (not _is_number(duration) or duration <= 0)):
        raise ParameterError(f"offset must be >= 0 and duration > 0 (finite), got offset={offset}, duration={duration}")
    p = _check_path(path)
    with _open(p) as f:
        damage, _ = _damage(p, f, full=True)
        if damage:
            raise AudioLoadError(p, damage)
        start = int(round(offset * f.samplerate))
        if start >= f.frames:
            raise AudioLoadError(p, f"offset {offset:.3f} s is past the end ({f.frames / f.samplerate:.3f} s)")
        wanted = f.frames - start if duration is None else min(int(round(duration * f.samplerate)), f.frames - start)
        wanted = max(wanted, 1)
        try:
            if start:
                _skip_to(f, start)
            data = _read_frames(f, wanted)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioLoadError(p, _cause(err)) from None
        native_rate = f.samplerate
    if len(data) < wanted:
        raise AudioLoadError(p, f"truncated or corrupt: decoded {len(data)} of {wanted} samples")
    y = np.ascontiguousarray(_to_mono(data), dtype=np.float32)
    if not np.isfinite(y).all():
        raise AudioLoadError(p, "decoded samples contain NaN or infinity")
    if sample_rate is not None and sample_rate != native_rate:
        y = soxr.resample(y, native_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return y


def stream(
    path: Pathlike,
    *,
    sample_rate: int | None = DEFAULT_SAMPLE_RATE,
    chunk_duration: float = 60.0,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 chunks of ``chunk_duration`` seconds (the last may be shorter).

    Every chunk but the last has exactly ``round(chunk_duration * sample_rate)`` samples. Memory stays
    bounded by the chunk size whatever the file length: the file is decoded block by block and resampled
    with soxr's streaming resampler, so concatenating the chunks gives the same signal as :func:`load`.

    Arguments and the file header are checked when ``stream`` is called, so a missing, empty, zero-length
    or non-audio file raises at once, before any iteration.

    Raises:
        AudioLoadError: as :func:`load`. A truncated or corrupt file first yields the audio decoded before
            the damage, then raises, so a caller can keep what it already processed. When the decoder itself
            fails (FLAC lost sync, MP3 garbage) the prefix stops at the last read block that decoded, up to
            2**18 samples (at the file's rate) short of the damage. NaN or infinite samples raise at once.
        ParameterError: invalid ``sample_rate`` or ``chunk_duration``.
    """
    _check_rate(sample_rate)
    if not _is_number(chunk_duration) or chunk_duration <= 0:
        raise ParameterError(f"chunk_duration must be a finite number > 0, got {chunk_duration!r}")
    p = _check_path(path)
    with _open(p) as f:  # fail fast on files that cannot be read at all
        out_rate = sample_rate or f.samplerate
    return _stream(p, out_rate, max(1, int(round(chunk_duration * out_rate))))


def _stream(p: Path, out_rate: int, chunk: int) -> Iterator[np.ndarray]:
    with _open(p) as f:
        native_rate = f.samplerate
        resampler = None
        if out_rate != native_rate:
            resampler = soxr.ResampleStream(native_rate, out_rate, 1, dtype="float32", quality="HQ")
        damage, good_frames = _damage(p, f, full=True)  # raised after the decodable audio has been yielded
        limit = f.frames if good_frames is None else min(good_frames, f.frames)  # don't yield past a bad Ogg page
        block_frames = max(1, min(_READ_BLOCK_FRAMES, _MAX_BLOCK_OUTPUT * native_rate // out_rate))  # bounded output
        buf = np.empty(chunk, dtype=np.float32)
        fill = 0
        decoded = 0
        while True:
            want = min(block_frames, limit - decoded)
            try:
                block = _read_frames(f, max(want, 0))
            except (sf.LibsndfileError, RuntimeError) as err:
                damage = damage or _cause(err)
                block = np.zeros(0, dtype=np.float32)
            decoded += len(block)
            last = want <= 0 or len(block) < want or decoded >= limit
            y = np.ascontiguousarray(_to_mono(block), dtype=np.float32)
            if not np.isfinite(y).all():
                raise AudioLoadError(p, "decoded samples contain NaN or infinity")
            if resampler is not None:
                y = resampler.resample_chunk(y, last=last)
            pos = 0
            while pos < len(y):  # each sample is copied once, into a fresh buffer per chunk
                n = min(chunk - fill, len(y) - pos)
                buf[fill : fill + n] = y[pos : pos + n]
                fill += n
                pos += n
                if fill == chunk:
                    yield buf
                    buf = np.empty(chunk, dtype=np.float32)
                    fill = 0
            if last:
                break
        if fill:
            yield buf[:fill].copy()
        if damage is None and decoded < f.frames:
            damage = f"truncated or corrupt: decoded {decoded} of {f.frames} samples"
    if damage:
        raise AudioLoadError(p, damage)


# ------------------------------------------------------------------------------------------------ writing


def _temporary_beside(p: Path) -> Path:
    """Create an empty, uniquely named file next to ``p`` with the usual permissions (0666 & ~umask).

    ``tempfile.mkstemp`` would create it 0600 and the renamed result would be private to its owner.
    """
    while True:
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def write_audio(path: Pathlike, samples: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``samples`` atomically, in blocks.

    The format follows the extension (.wav, .flac, .ogg/.oga, .mp3). Samples are clipped to [-1, 1]. The
    file is written under a temporary name in the same folder and renamed, so a reader never sees a
    half-written file, and on any error nothing is left behind (an existing file at ``path`` is kept).

    Args:
        path: destination; its folder is created if needed.
        samples: floating-point ``(num_samples,)`` or ``(num_samples, channels)`` array, finite values.
        sample_rate: rate in Hz (MP3 accepts only the MPEG rates 8 000 ... 48 000).
        subtype: libsndfile subtype such as ``"FLOAT"`` or ``"PCM_24"``; None picks the format's default.

    Returns:
        The final path.

    Raises:
        ParameterError: unknown extension, empty or non-float or non-finite samples, bad ``sample_rate``,
            or a format/subtype/rate/channels combination libsndfile cannot write.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in _WRITE_FORMATS:
        raise ParameterError(f"{p}: cannot write audio with extension {ext!r}; use one of {sorted(_WRITE_FORMATS)}")
    samples = np.asarray(samples)
    if samples.dtype.kind != "f":
        raise ParameterError(f"{p}: expected floating-point samples in [-1, 1], got dtype {samples.dtype}")
    if samples.ndim not in (1, 2) or samples.shape[0] == 0 or (samples.ndim == 2 and samples.shape[1] == 0):
        raise ParameterError(
            f"{p}: expected a non-empty (num_samples,) or (num_samples, channels) array, got {samples.shape}"
        )
    check_int("sample_rate", sample_rate, min=1, owner=str(p))
    fmt, default_subtype = _WRITE_FORMATS[ext]
    subtype = subtype or default_subtype
    if not sf.check_format(fmt, subtype):
        raise ParameterError(f"{p}: libsndfile cannot write subtype {subtype!r} in format {fmt}")
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(p)
    try:
        try:
            out = sf.SoundFile(
                str(tmp), "w", samplerate=int(sample_rate), channels=channels, format=fmt, subtype=subtype
            )
        except sf.LibsndfileError as err:
            if err.code == _SFE_SYSTEM:
                raise
            raise ParameterError(
                f"{p}: cannot write {fmt}/{subtype} at {sample_rate} Hz with {channels} channels ({_cause(err)})"
            ) from None
        with out:
            for i in range(0, samples.shape[0], _WRITE_BLOCK_FRAMES):
                block = samples[i : i + _WRITE_BLOCK_FRAMES]
                if not np.isfinite(block).all():
                    raise ParameterError(f"{p}: samples contain NaN or infinity (near sample {i})")
                out.write(np.clip(block, -1.0, 1.0).astype(np.float32, copy=False))
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p
