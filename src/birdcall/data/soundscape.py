"""Assemble labelled clips into continuous recordings scored per window, the way field recordings look.

Clip-level validation overstates every model: on real recordings calls arrive at any offset, are cut at window
edges, overlap other species and sit in background noise. This module builds such recordings from a set of
labelled clips (a validation fold) and a pool of background clips (no animal sound), and derives the BirdCLEF
window labels from the calls' onsets and offsets, so a model can be scored on them with ``predict`` + ``score``.

Layout written by :func:`assemble_soundscapes` (this module owns it)::

    OUT/soundscapes/<prefix>_0001.ogg   continuous recordings (32 kHz mono OGG)
    OUT/solution.csv                    row_id (<stem>_<end second>), one 0/1 column per species code
    OUT/events.csv                      recording, start, end, species_code: every placed call
    OUT/placements.csv                  recording, clip, start, end, gain_db: where each clip went

**Labels.** A species is present in a window when one of its calls overlaps the window by at least
``min(min_overlap, min_overlap_fraction * call duration)`` seconds (:func:`window_labels`). A clip species
without annotated calls counts as calling over the whole clip.

**Placement.** Clips are shuffled and laid end to end with exponential gaps (not on the window grid); with
probability ``overlap_probability`` a clip starts inside the previous one instead, when the two share no
species. Each clip keeps its own calls (and noise), scaled to an SNR against the background bed drawn
uniformly from ``snr_db``, with short raised-cosine fades at its edges. The bed is a sequence of randomly
chosen background clips joined with cross-fades, at an RMS level drawn from ``background_db``.

Everything is drawn from ``np.random.default_rng(seed)`` in a fixed order, so the same inputs and seed give
the same recordings and labels on every machine.

(Over 500 lines: one layout and everything that decides it, placement, levels and window labels.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._validate import is_int, is_number
from ..audio import load, write_audio
from ..config import check_fields, check_number
from ..errors import DataError, ParameterError
from ..fileio import atomic_to_csv
from ..layout import EVENTS, SOLUTION, SOUNDSCAPES
from ..types import Pathlike

__all__ = [
    "SoundscapeConfig",
    "SourceClip",
    "Placement",
    "window_labels",
    "plan_soundscapes",
    "render_soundscape",
    "assemble_soundscapes",
    "source_clips",
    "WindowMixConfig",
    "mix_window",
    "background_bed",
    "read_events",
    "clip_calls",
]

PLACEMENTS = "placements.csv"  # the other names are birdcall.layout's (a soundscape set is laid out as a data set's soundscapes)


def _finite(value: float) -> bool:
    return is_number(value) and math.isfinite(value)


@dataclass(frozen=True)
class SoundscapeConfig:
    """How recordings are assembled and labelled (all times in seconds).

    Attributes:
        duration: length of each recording; a multiple of ``window``.
        window: scored window length (BirdCLEF: 5 s, row ids name the end second).
        min_overlap: a call marks a window when it overlaps it by this much ...
        min_overlap_fraction: ... or by this fraction of the call, whichever is smaller.
        gap_mean: mean of the exponential gap between one clip's end and the next one's start.
        overlap_probability: chance that a clip starts inside the previous one (when their species differ).
        snr_db: range of clip-to-bed RMS ratios, in dB.
        background_db: range of the bed's RMS level, in dBFS.
        fade: raised-cosine fade at each clip's edges and between background clips.
        sample_rate: output rate in Hz.
        seed: seed of every random draw.
    """

    duration: float = 60.0
    window: float = 5.0
    min_overlap: float = 0.3
    min_overlap_fraction: float = 0.5
    gap_mean: float = 2.0
    overlap_probability: float = 0.3
    snr_db: tuple[float, float] = (0.0, 15.0)
    background_db: tuple[float, float] = (-45.0, -30.0)
    fade: float = 0.02
    sample_rate: int = 32_000
    seed: int = 0

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in ("duration", "window", "min_overlap", "min_overlap_fraction", "gap_mean", "overlap_probability", "fade"):
            value = getattr(self, key)
            if not _finite(value) or value < 0:
                raise ParameterError(f"{name}.{key}: expected a finite number >= 0, got {value!r}")
        if self.window <= 0 or self.duration < self.window:
            raise ParameterError(f"{name}: need 0 < window <= duration, got window={self.window}, duration={self.duration}")
        if not math.isclose(self.duration / self.window, round(self.duration / self.window)):
            raise ParameterError(f"{name}.duration: must be a multiple of window {self.window}, got {self.duration}")
        if self.min_overlap_fraction > 1 or self.overlap_probability > 1:
            raise ParameterError(f"{name}: min_overlap_fraction and overlap_probability must be <= 1")
        for key in ("snr_db", "background_db"):
            low_high = tuple(getattr(self, key))
            if len(low_high) != 2 or not all(_finite(v) for v in low_high) or low_high[0] > low_high[1]:
                raise ParameterError(f"{name}.{key}: expected (low, high) with low <= high, got {getattr(self, key)!r}")
            object.__setattr__(self, key, low_high)
        if not is_int(self.sample_rate) or self.sample_rate < 8000:
            raise ParameterError(f"{name}.sample_rate: expected an integer >= 8000, got {self.sample_rate!r}")


@dataclass(frozen=True)
class SourceClip:
    """A labelled clip to place: its audio file, duration, species and annotated calls (clip time)."""

    path: Path
    duration: float
    labels: tuple[str, ...]
    events: tuple[tuple[float, float, str], ...] = ()

    def calls(self) -> list[tuple[float, float, str]]:
        """Annotated calls, plus the whole clip for each label that has none."""
        annotated = {code for _, _, code in self.events}
        whole = [(0.0, self.duration, code) for code in self.labels if code not in annotated]
        return [(s, min(e, self.duration), c) for s, e, c in self.events if s < self.duration] + whole


@dataclass(frozen=True)
class Placement:
    """One clip placed in one recording at ``start`` seconds, scaled to ``snr_db`` against the bed."""

    recording: int
    clip: int
    start: float
    snr_db: float


@dataclass
class _Recording:
    placements: list[Placement] = field(default_factory=list)
    end: float = 0.0


def window_labels(
    events: Iterable[tuple[float, float, str]],
    *,
    duration: float,
    species_codes: Sequence[str],
    window: float = 5.0,
    min_overlap: float = 0.3,
    min_overlap_fraction: float = 0.5,
) -> np.ndarray:
    """Presence of each species in each window of a recording.

    A call ``(start, end, code)`` marks window ``w`` when its overlap with ``[w * window, (w + 1) * window)`` is
    at least ``min(min_overlap, min_overlap_fraction * (end - start))``.

    Args:
        events: ``(start, end, species_code)`` of each call, in seconds; unknown codes are ignored.
        duration: recording length (gives ``ceil(duration / window)`` windows).
        species_codes: column order.

    Returns:
        ``(num_windows, len(species_codes))`` uint8 array of 0/1.

    Raises:
        ParameterError: ``duration`` or ``window`` is not positive.
    """
    if not _finite(duration) or duration <= 0 or not _finite(window) or window <= 0:
        raise ParameterError(f"window_labels: duration and window must be > 0, got {duration}, {window}")
    index = {code: i for i, code in enumerate(species_codes)}
    num_windows = max(1, math.ceil(round(duration / window, 6)))
    labels = np.zeros((num_windows, len(index)), dtype=np.uint8)
    for start, end, code in events:
        if code not in index or not end > start:
            continue
        need = min(min_overlap, min_overlap_fraction * (end - start))
        first = max(0, int(start // window))
        last = min(num_windows - 1, int(end // window))
        for w in range(first, last + 1):
            overlap = min(end, (w + 1) * window) - max(start, w * window)
            if overlap > 0 and overlap >= need - 1e-9:
                labels[w, index[code]] = 1
    return labels


def plan_soundscapes(clips: Sequence[SourceClip], config: SoundscapeConfig, rng: np.random.Generator) -> list[list[Placement]]:
    """Lay every clip exactly once into recordings of ``config.duration`` seconds (no audio is read).

    Returns:
        One list of placements per recording, in time order.

    Raises:
        ParameterError: a clip is longer than a recording.
    """
    for clip in clips:
        if not clip.duration > 0 or clip.duration > config.duration:
            raise ParameterError(f"{clip.path}: clip duration {clip.duration} s does not fit a {config.duration}-s recording")
    recordings = [_Recording()]
    previous: Placement | None = None
    for index in rng.permutation(len(clips)):
        clip = clips[int(index)]
        current = recordings[-1]
        overlap = rng.random() < config.overlap_probability
        gap = rng.exponential(config.gap_mean) if config.gap_mean > 0 else 0.0
        snr = rng.uniform(*config.snr_db)
        start = current.end + gap
        if overlap and previous is not None and previous.recording == len(recordings) - 1:
            before = clips[previous.clip]
            if not set(before.labels) & set(clip.labels):
                start = previous.start + rng.uniform(0.2, 0.8) * before.duration
        if start + clip.duration > config.duration:
            recordings.append(_Recording())
            current = recordings[-1]
            start = rng.uniform(0.0, min(gap, config.duration - clip.duration))
        placement = Placement(len(recordings) - 1, int(index), round(float(start), 4), float(snr))
        current.placements.append(placement)
        current.end = max(current.end, placement.start + clip.duration)
        previous = placement
    return [sorted(r.placements, key=lambda p: p.start) for r in recordings if r.placements]


def _fade(num_samples: int, fade_samples: int) -> np.ndarray:
    n = min(fade_samples, num_samples // 2)
    envelope = np.ones(num_samples, dtype=np.float32)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)).astype(np.float32)
        envelope[:n] = ramp
        envelope[-n:] = ramp[::-1]
    return envelope


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0


def background_bed(
    read: Callable[[Path], np.ndarray],
    backgrounds: Sequence[Path],
    num_samples: int,
    *,
    fade_samples: int,
    level_db: tuple[float, float],
    rng: np.random.Generator,
    random_start: bool = False,
) -> np.ndarray:
    """Background clips drawn at random and joined with cross-fades, scaled to an RMS level drawn from ``level_db``.

    Args:
        read: decodes one background file (e.g. ``AudioCache.get`` or a memoised ``load``).
        random_start: begin inside the first clip at a uniform offset (training windows), not at its start.

    Returns:
        ``(num_samples,)`` float32.
    """
    bed = np.zeros(num_samples, dtype=np.float32)
    fade = max(1, fade_samples)
    pos, first = 0, True
    while pos < num_samples:
        y = read(backgrounds[int(rng.integers(len(backgrounds)))])
        if y.size < 4 * fade:  # a very short clip is tiled so that its fades leave a flat middle
            y = np.tile(y, -(-4 * fade // max(1, y.size)))
        if first and random_start and y.size > 4 * fade:
            y = y[int(rng.integers(0, y.size - 4 * fade + 1)) :]
        first = False
        level = _rms(y)
        part = (y / level if level > 0 else y) * _fade(y.size, fade)
        begin = max(0, pos - fade)
        stop = min(num_samples, begin + part.size)
        bed[begin:stop] += part[: stop - begin]
        pos = stop
    target = 10.0 ** (rng.uniform(*level_db) / 20.0)
    level = _rms(bed)
    return bed * (target / level if level > 0 else 0.0)


def render_soundscape(
    placements: Sequence[Placement],
    clips: Sequence[SourceClip],
    backgrounds: Sequence[Pathlike],
    config: SoundscapeConfig,
    rng: np.random.Generator,
    *,
    cache: dict | None = None,
) -> np.ndarray:
    """The waveform of one planned recording: background bed plus each clip at its offset and SNR.

    Returns:
        ``(round(duration * sample_rate),)`` float32 array, peak at most 0.98.
    """
    if not backgrounds:
        raise ParameterError("render_soundscape: no background clips to build the bed from")
    cache = {} if cache is None else cache
    num_samples = int(round(config.duration * config.sample_rate))
    def read(path: Path) -> np.ndarray:
        if path not in cache:
            cache[path] = load(path, sample_rate=config.sample_rate)
        return cache[path]

    out = background_bed(read, [Path(b) for b in backgrounds], num_samples, fade_samples=int(config.fade * config.sample_rate),
                         level_db=config.background_db, rng=rng)
    bed_rms = _rms(out) or 1e-4
    fade = int(config.fade * config.sample_rate)
    for placement in placements:
        clip = clips[placement.clip]
        y = load(clip.path, sample_rate=config.sample_rate)
        offset = int(round(placement.start * config.sample_rate))
        y = y[: num_samples - offset]
        level = _rms(y)
        if level == 0 or y.size == 0:
            continue
        gain = 10.0 ** (placement.snr_db / 20.0) * bed_rms / level
        out[offset : offset + y.size] += (gain * y * _fade(y.size, fade)).astype(np.float32)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.98:
        out *= 0.98 / peak
    return out.astype(np.float32, copy=False)


def _placed_calls(placements: Sequence[Placement], clips: Sequence[SourceClip], duration: float) -> list[tuple[float, float, str]]:
    calls = []
    for p in placements:
        for start, end, code in clips[p.clip].calls():
            s, e = p.start + start, min(p.start + end, duration)
            if e > s:
                calls.append((round(s, 4), round(e, 4), code))
    return calls


def assemble_soundscapes(
    clips: Sequence[SourceClip],
    backgrounds: Sequence[Pathlike],
    out_dir: Pathlike,
    *,
    species_codes: Sequence[str],
    config: SoundscapeConfig = SoundscapeConfig(),
    prefix: str = "soundscape",
) -> pd.DataFrame:
    """Plan, render and write recordings of ``clips`` over ``backgrounds`` with their window labels.

    Args:
        clips: labelled clips, each placed exactly once.
        backgrounds: background-only audio files for the bed (keep them apart from any training data).
        out_dir: destination folder (layout in the module docstring); files are written atomically.
        species_codes: columns of ``solution.csv``; labels of other codes are ignored.
        prefix: recording file stem prefix (row ids are ``<prefix>_NNNN_<end second>``).

    Returns:
        The solution table (``row_id`` + one 0/1 column per code), as written.

    Raises:
        ParameterError: no clips, no backgrounds, a clip longer than a recording, or an unsafe prefix.
    """
    if not clips:
        raise ParameterError("assemble_soundscapes: no clips to place")
    if not prefix or any(ch in prefix for ch in "/\\\0") or prefix.startswith("."):
        raise ParameterError(f"assemble_soundscapes: prefix must be a plain file name, got {prefix!r}")
    out = Path(out_dir)
    rng = np.random.default_rng(config.seed)
    plans = plan_soundscapes(clips, config, rng)
    codes = list(species_codes)
    solution, events, placed = [], [], []
    cache: dict = {}
    for number, placements in enumerate(plans, start=1):
        stem = f"{prefix}_{number:04d}"
        audio = render_soundscape(placements, clips, backgrounds, config, rng, cache=cache)
        write_audio(out / SOUNDSCAPES / f"{stem}.ogg", audio, config.sample_rate)
        calls = _placed_calls(placements, clips, config.duration)
        labels = window_labels(calls, duration=config.duration, species_codes=codes, window=config.window,
                               min_overlap=config.min_overlap, min_overlap_fraction=config.min_overlap_fraction)
        for w, row in enumerate(labels):
            solution.append({"row_id": f"{stem}_{round((w + 1) * config.window)}", **dict(zip(codes, row.tolist()))})
        events += [{"recording": stem, "start": s, "end": e, "species_code": c} for s, e, c in calls]
        placed += [{"recording": stem, "clip": str(clips[p.clip].path), "start": p.start,
                    "end": round(p.start + clips[p.clip].duration, 4), "snr_db": round(p.snr_db, 3)} for p in placements]
    frame = pd.DataFrame(solution, columns=["row_id", *codes])
    atomic_to_csv(frame, out / SOLUTION, index=False)
    atomic_to_csv(pd.DataFrame(events, columns=["recording", "start", "end", "species_code"]), out / EVENTS, index=False)
    atomic_to_csv(pd.DataFrame(placed, columns=["recording", "clip", "start", "end", "snr_db"]), out / PLACEMENTS, index=False)
    return frame


def source_clips(frame: pd.DataFrame, events: Mapping[str, Sequence[tuple[float, float, str]]] | None = None) -> list[SourceClip]:
    """:class:`SourceClip` list from a clip table frame (``path``, ``labels``, ``duration``) and calls by path."""
    events = events or {}
    return [
        SourceClip(Path(row.path), float(row.duration), tuple(row.labels), tuple(events.get(str(row.path), ())))
        for row in frame.itertuples(index=False)
    ]


# --------------------------------------------------------------------------------------------------------------
# Training windows (soundscape-style training)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowMixConfig:
    """How soundscape-style training windows are drawn (times in seconds; see :class:`SoundscapeWindows`).

    Attributes:
        p: chance that a training item is a mixed window; otherwise the plain clip crop is used.
        extra_clips: most clips mixed in besides the item's own (uniform count ``0..extra_clips``).
        min_visible: the least part of a clip kept inside the window when it is placed across an edge.
        snr_db: range of clip-to-bed RMS ratios, in dB.
        background_db: range of the bed's RMS level, in dBFS.
        min_overlap: window labels: a call counts when it overlaps the window by this much ...
        min_overlap_fraction: ... or by this fraction of the call, whichever is smaller.
        fade: raised-cosine fade at each clip's edges.
    """

    p: float = 0.0
    extra_clips: int = 1
    min_visible: float = 0.5
    snr_db: tuple[float, float] = (0.0, 15.0)
    background_db: tuple[float, float] = (-45.0, -30.0)
    min_overlap: float = 0.3
    min_overlap_fraction: float = 0.5
    fade: float = 0.02

    def __post_init__(self) -> None:
        check_fields(self)
        for key in ("p", "min_overlap_fraction"):
            check_number(self, key, ge=0, le=1)
        for key in ("min_visible", "min_overlap", "fade"):
            check_number(self, key, ge=0)
        check_number(self, "extra_clips", ge=0, le=8)
        for key in ("snr_db", "background_db"):
            low_high = getattr(self, key)
            if len(low_high) != 2 or low_high[0] > low_high[1]:
                raise ParameterError(f"{type(self).__name__}.{key}: expected [low, high] with low <= high, got {list(low_high)}")


def mix_window(
    clips: Sequence[tuple[np.ndarray, Sequence[tuple[float, float, str]]]],
    bed: np.ndarray,
    *,
    sample_rate: int,
    species_codes: Sequence[str],
    config: WindowMixConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One training window: ``clips`` (audio, calls in clip time) placed at random offsets over ``bed``.

    Each clip lands at a uniform offset that keeps at least ``min_visible`` seconds of it (or all of it, when
    shorter) inside the window, so calls are cut at either edge as in a recording; it is scaled to an SNR drawn
    from ``snr_db`` against the bed. Labels follow :func:`window_labels` from the calls that stay inside.

    Args:
        clips: ``(samples, calls)`` per clip, ``calls`` as ``(start, end, code)`` seconds from the clip start.
        bed: background of exactly the window's length (``(num_samples,)``), already at its level.

    Returns:
        ``(waveform (num_samples,) float32, target (len(species_codes),) float32 of 0/1)``.
    """
    n = bed.shape[0]
    window = n / sample_rate
    out = bed.astype(np.float32, copy=True)
    bed_rms = _rms(bed) or 10.0 ** (config.background_db[0] / 20.0)
    fade = int(config.fade * sample_rate)
    calls: list[tuple[float, float, str]] = []
    for samples, clip_calls in clips:
        size = samples.shape[0]
        if size == 0:
            continue
        visible = min(int(config.min_visible * sample_rate), size, n)
        offset = int(rng.integers(visible - size, n - visible + 1))  # clip start, may be before 0 or cut at the end
        lo, hi = max(0, offset), min(n, offset + size)
        level = _rms(samples)
        if level > 0:
            gain = 10.0 ** (rng.uniform(*config.snr_db) / 20.0) * bed_rms / level
            out[lo:hi] += (gain * samples * _fade(size, fade))[lo - offset : hi - offset].astype(np.float32)
        shift = offset / sample_rate
        calls += [(s + shift, e + shift, c) for s, e, c in clip_calls]
    # the evaluation's rule, on whole calls: a call cut by the window edge counts when enough of it is inside
    labels = window_labels(calls, duration=window, species_codes=species_codes, window=window,
                           min_overlap=config.min_overlap, min_overlap_fraction=config.min_overlap_fraction)[0]
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.98:
        out *= 0.98 / peak
    return out, labels.astype(np.float32)


def read_events(root: Pathlike) -> dict[str, list[tuple[float, float, str]]]:
    """Annotated calls of a data set, ``{filename relative to root: [(start, end, species_code), ...]}``, from
    ``root/events.csv`` (columns ``filename``, ``start``, ``end``, ``species_code``); empty without the file.

    Raises:
        DataError: the file lacks a column or holds a non-numeric or reversed time (one line naming the file).
    """
    path = Path(root) / EVENTS
    if not path.is_file():
        return {}
    try:
        frame = pd.read_csv(path, dtype={"filename": str, "species_code": str})
        missing = {"filename", "start", "end", "species_code"} - set(frame.columns)
        if missing:
            raise ValueError(f"missing column(s) {sorted(missing)}")
        times = frame[["start", "end"]].astype(float).to_numpy()
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(path, f"malformed events table: {' '.join(str(err).split())}") from None
    bad = ~np.isfinite(times).all(axis=1) | (times[:, 1] < times[:, 0])
    if bad.any():
        raise DataError(path, f"row {int(np.flatnonzero(bad)[0]) + 2}: start/end must be finite with start <= end")
    out: dict[str, list[tuple[float, float, str]]] = {}
    for name, (start, end), code in zip(frame["filename"], times, frame["species_code"]):
        out.setdefault(str(name), []).append((float(start), float(end), str(code)))
    return out


def clip_calls(table) -> list[list[tuple[float, float, str]]]:
    """The calls of every clip of a :class:`~.dataset.ClipTable`, in row order: its ``events.csv`` calls, and a
    whole-clip span (duration from the file header) for each label of the clip without an annotated call."""
    from ..audio import info

    events = read_events(table.root)
    out = []
    for row in table.frame.itertuples(index=False):
        calls = list(events.get(f"train_audio/{row.filename}", []))
        annotated = {code for _, _, code in calls}
        missing = [code for code in row.labels if code not in annotated]
        if missing:
            duration = info(row.path).duration
            calls += [(0.0, duration, code) for code in missing]
        out.append(calls)
    return out
