"""The synthetic chorus data set: a complete BirdCLEF-layout data set generated from a seed.

Layout written by :func:`make_dataset` under ``out_dir``::

    train_audio/<code>/<code>_0001.ogg   labelled clips (5 s, some 2-5 s), one focal species, maybe secondaries
    train_metadata.csv                   filename, primary_label, secondary_labels, labels, sound_types, duration,
                                         scientific_name, common_name, source (the NIPS4B columns)
    events.csv                           filename (relative to out_dir), start, end, species_code, sound_type:
                                         every call in every training clip
    taxonomy.csv                         species_code, scientific_name, common_name, taxon (sorted by code)
    background/background_0001.ogg       noise only: no call of any target species
    soundscapes/soundscape_0001.ogg      continuous recordings (default 3 min) with overlapping calls
    soundscape_events.csv                soundscape (stem), start, end, species_code: ground-truth calls
    solution.csv                         row_id (<stem>_<end second>), one 0/1 column per species in taxonomy
                                         order, one row per 5-s window of every soundscape
    synth_config.yaml                    the parameters used (rerun with them to regenerate)
    .birdcall-synth.json                 marker (format, version, seed), written before any output: only a
                                         folder that has it may be replaced with ``overwrite``

**Window label rule.** Windows are ``[5k, 5k + 5)`` seconds, ``k = 0 .. ceil(duration / 5) - 1``, and the row
id names the window's end second (5, 10, 15, ...). A species is present (1) in a window when at least one of
its calls overlaps the window by ``>= min(LABEL_MIN_OVERLAP, half the call's duration)``, i.e. by half a
second, or by half the call for calls shorter than one second. A call's extent is the span of its rendered
samples (first to last sample, including the attack and release ramps).

**Levels.** Every clip and soundscape has a background scaled to an RMS drawn log-uniformly between -46 and
-36 dBFS. A call mixed at ``snr_db`` has an RMS, over its own extent, ``snr_db`` above the background RMS of its
recording. A recording whose peak would exceed 0.98 is scaled down as a whole (SNRs are unchanged).

**Determinism.** The same parameters give the same decoded audio and byte-identical CSVs. Every clip,
background and soundscape has its own random stream spawned from ``SeedSequence(seed)``, so changing e.g.
``num_soundscapes`` leaves the training clips unchanged. Ogg files still differ bytewise between runs because
libsndfile writes a random stream serial number.

(Over 600 lines: the one writer of the synthetic layout, the data set's draws in their fixed order, which
keeps the output byte-identical for a seed.)
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from .. import __version__
from .._validate import is_int
from ..audio import write_audio
from ..config import to_dict
from ..errors import ParameterError
from ..fileio import atomic_path, atomic_write_text
from ..layout import BACKGROUND, SOLUTION, SOUNDSCAPE_EVENTS, SOUNDSCAPES, TAXONOMY, TRAIN_AUDIO, TRAIN_METADATA
from ..layout import EVENTS as TRAIN_EVENTS
from ..progress import make_progress
from ..types import Pathlike
from .calls import MAX_SPECIES, SpeciesSpec, _jitter_factor, _make_bank, render_call
from .noise import render_background

__all__ = [
    "WINDOW_DURATION",
    "LABEL_MIN_OVERLAP",
    "AUDIO_FORMATS",
    "SynthConfig",
    "SynthDataset",
    "make_dataset",
    "window_labels",
]

WINDOW_DURATION = 5
"""Length in seconds of a scored soundscape window (an integer, as row ids name whole seconds)."""
LABEL_MIN_OVERLAP = 0.5
"""A call labels a window when it overlaps it by at least this many seconds, or by half the call if shorter."""
AUDIO_FORMATS = ("ogg", "flac", "wav")

_NOISE_DBFS = (-46.0, -36.0)  # background RMS range (dBFS)
_MAX_PEAK = 0.98
_CALL_MARGIN = 0.05  # seconds kept free at both ends of a training clip
_TIME_DECIMALS = 5  # event times in the CSVs (10 us)

CONFIG_FILE = "synth_config.yaml"  # the data set's other names are birdcall.layout's (DatasetLayout)
MARKER_FILE = ".birdcall-synth.json"
"""Written first in every data set root by :func:`make_dataset`; ``overwrite`` replaces only folders that have it."""
_MARKER_FORMAT, _MARKER_VERSION = "birdcall-synth", 1
_OUTPUT_DIRS = (TRAIN_AUDIO, BACKGROUND, SOUNDSCAPES)
_OUTPUT_FILES = (TRAIN_METADATA, TRAIN_EVENTS, TAXONOMY, SOLUTION, SOUNDSCAPE_EVENTS, CONFIG_FILE)


def _is_int(value: object) -> bool:
    return is_int(value)


_FLOAT_FIELDS = (
    "soundscape_duration", "clip_duration", "min_clip_duration", "short_clip_prob", "secondary_prob", "variation", "bouts_per_minute",
    "empty_window_fraction",
)


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the synthetic data set (see :func:`make_dataset` for their meaning)."""

    num_species: int = 12
    seed: int = 0
    clips_per_species: int = 20
    num_background: int = 20
    num_soundscapes: int = 3
    soundscape_duration: float = 180.0
    clip_duration: float = 5.0
    min_clip_duration: float = 2.0
    short_clip_prob: float = 0.2
    secondary_prob: float = 0.3
    snr_db: tuple[float, float] = (-3.0, 20.0)
    variation: float = 1.0
    num_nontarget: int = 6
    bouts_per_minute: float = 1.0
    empty_window_fraction: float = 0.15
    sample_rate: int = 32_000
    audio_format: str = "ogg"

    def __post_init__(self) -> None:
        object.__setattr__(self, "snr_db", tuple(float(x) for x in self.snr_db))
        for name in _FLOAT_FIELDS:  # 180 and 180.0 are one data set (and one synth_config.yaml)
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        counts = {
            "num_species": (self.num_species, 1, MAX_SPECIES),
            "clips_per_species": (self.clips_per_species, 1, 10_000),
            "num_background": (self.num_background, 0, 100_000),
            "num_soundscapes": (self.num_soundscapes, 0, 10_000),
            "num_nontarget": (self.num_nontarget, 0, 50),
            "seed": (self.seed, 0, 2**63 - 1),
        }
        for name, (value, lo, hi) in counts.items():
            if not _is_int(value) or not lo <= value <= hi:
                raise ParameterError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
        if self.num_species + self.num_nontarget > MAX_SPECIES:
            raise ParameterError(f"num_species + num_nontarget must be <= {MAX_SPECIES}")
        if not _is_int(self.sample_rate) or not 24_000 <= self.sample_rate <= 192_000:
            raise ParameterError(f"sample_rate must be an integer in 24000..192000 Hz, got {self.sample_rate!r}")
        if self.audio_format not in AUDIO_FORMATS:
            raise ParameterError(f"audio_format must be one of {AUDIO_FORMATS}, got {self.audio_format!r}")
        if not 1.0 <= self.min_clip_duration <= self.clip_duration <= 600.0:
            raise ParameterError(
                "need 1 <= min_clip_duration <= clip_duration <= 600 s, "
                f"got {self.min_clip_duration}, {self.clip_duration}"
            )
        if not WINDOW_DURATION <= self.soundscape_duration <= 24 * 3600:
            raise ParameterError(
                f"soundscape_duration must be in {WINDOW_DURATION}..86400 s, got {self.soundscape_duration}"
            )
        for name in ("short_clip_prob", "secondary_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ParameterError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.empty_window_fraction < 1.0:
            raise ParameterError(f"empty_window_fraction must be in [0, 1), got {self.empty_window_fraction}")
        lo, hi = self.snr_db if len(self.snr_db) == 2 else (math.nan, math.nan)
        if not -30.0 <= lo <= hi <= 40.0:
            raise ParameterError(f"snr_db must be (low, high) with -30 <= low <= high <= 40 dB, got {self.snr_db}")
        if not 0.0 <= self.variation <= 3.0:
            raise ParameterError(f"variation must be in [0, 3], got {self.variation}")
        if not 0.0 < self.bouts_per_minute <= 60.0:
            raise ParameterError(f"bouts_per_minute must be in (0, 60], got {self.bouts_per_minute}")


@dataclass(frozen=True)
class SynthDataset:
    """What :func:`make_dataset` wrote: the root folder, the species and the file lists.

    File names are relative: ``train_files`` to ``train_audio/`` (as in ``train_metadata.csv``),
    ``background_files`` and ``soundscape_files`` to ``root``.
    """

    root: Path
    config: SynthConfig
    species: tuple[SpeciesSpec, ...]
    nontarget_species: tuple[SpeciesSpec, ...]
    train_files: tuple[str, ...] = field(repr=False)
    background_files: tuple[str, ...] = field(repr=False)
    soundscape_files: tuple[str, ...] = field(repr=False)
    num_windows: int = 0

    @property
    def species_codes(self) -> tuple[str, ...]:
        """Codes in taxonomy (and solution column) order."""
        return tuple(spec.code for spec in self.species)

    @property
    def train_audio_dir(self) -> Path:
        return self.root / TRAIN_AUDIO

    @property
    def background_dir(self) -> Path:
        return self.root / BACKGROUND

    @property
    def soundscapes_dir(self) -> Path:
        return self.root / SOUNDSCAPES

    @property
    def train_metadata_path(self) -> Path:
        return self.root / TRAIN_METADATA

    @property
    def train_events_path(self) -> Path:
        return self.root / TRAIN_EVENTS

    @property
    def taxonomy_path(self) -> Path:
        return self.root / TAXONOMY

    @property
    def solution_path(self) -> Path:
        return self.root / SOLUTION

    @property
    def soundscape_events_path(self) -> Path:
        return self.root / SOUNDSCAPE_EVENTS

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE


class _Event(NamedTuple):
    start: float
    end: float
    code: str

    @classmethod
    def at(cls, offset: int, num_samples: int, code: str, sample_rate: int) -> _Event:
        """Event of a call at sample ``offset``; times rounded to the 10 us written to the CSVs, so labels
        computed from the CSVs equal those computed here."""
        start = round(offset / sample_rate, _TIME_DECIMALS)
        return cls(start, round((offset + num_samples) / sample_rate, _TIME_DECIMALS), code)


# --------------------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------------------


def _num_windows(duration: float) -> int:
    return max(1, math.ceil(round(duration, 6) / WINDOW_DURATION))


def window_labels(
    events: Iterable[tuple[float, float, str]], *, duration: float, species_codes: Sequence[str]
) -> np.ndarray:
    """Presence of each species in each 5-s window of a recording, by the documented rule.

    Args:
        events: ``(start, end, species_code)`` of each call, in seconds.
        duration: recording duration in seconds (gives ``ceil(duration / 5)`` windows).
        species_codes: column order; events of other codes are ignored.

    Returns:
        ``(num_windows, len(species_codes))`` uint8 array of 0/1.

    Raises:
        ParameterError: ``duration`` is not positive.
    """
    if duration <= 0:
        raise ParameterError(f"window_labels: duration must be > 0, got {duration}")
    index = {code: i for i, code in enumerate(species_codes)}
    labels = np.zeros((_num_windows(duration), len(index)), dtype=np.uint8)
    for start, end, code in events:
        if code not in index or end <= start:
            continue
        need = min(LABEL_MIN_OVERLAP, 0.5 * (end - start))
        first = max(0, int(start // WINDOW_DURATION))
        last = min(labels.shape[0] - 1, int(end // WINDOW_DURATION))
        for w in range(first, last + 1):
            overlap = min(end, (w + 1) * WINDOW_DURATION) - max(start, w * WINDOW_DURATION)
            if overlap >= need - 1e-9:
                labels[w, index[code]] = 1
    return labels


# --------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------


def _noise_level(rng: np.random.Generator) -> float:
    return 10.0 ** (rng.uniform(*_NOISE_DBFS) / 20.0)


def _add_call(out: np.ndarray, call: np.ndarray, offset: int, *, noise_rms: float, snr_db: float) -> None:
    """Add ``call`` at ``offset`` with an RMS ``snr_db`` above ``noise_rms``."""
    rms = float(np.sqrt(np.mean(np.square(call, dtype=np.float64))))
    gain = noise_rms * 10.0 ** (snr_db / 20.0) / rms
    out[offset : offset + len(call)] += (gain * call).astype(np.float32)


def _limit_peak(out: np.ndarray) -> None:
    peak = max(float(out.max()), -float(out.min()))  # no np.abs: it would copy a long recording
    if peak > _MAX_PEAK:
        out *= np.float32(_MAX_PEAK / peak)


class _Individual:
    """One bird: a fixed pitch and tempo factor, plus a little call-to-call variation."""

    def __init__(self, spec: SpeciesSpec, rng: np.random.Generator, variation: float):
        self.spec, self.variation = spec, variation
        self.pitch = _jitter_factor(rng, spec.pitch_jitter * variation)
        self.tempo = _jitter_factor(rng, spec.tempo_jitter * variation)

    def call(self, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        pitch = self.pitch * _jitter_factor(rng, 0.25 * self.spec.pitch_jitter * self.variation)
        tempo = self.tempo * _jitter_factor(rng, 0.25 * self.spec.tempo_jitter * self.variation)
        return render_call(self.spec, rng=rng, sample_rate=sample_rate, pitch_scale=pitch, tempo_scale=tempo)


def _clip_snr(rng: np.random.Generator, snr_db: tuple[float, float], base: float | None = None) -> float:
    if base is None:
        return float(rng.uniform(*snr_db))
    return float(np.clip(base + rng.normal(0.0, 1.0), *snr_db))


def _render_train_clip(
    rng: np.random.Generator,
    *,
    primary: SpeciesSpec,
    others: Sequence[SpeciesSpec],
    nontarget: Sequence[SpeciesSpec],
    cfg: SynthConfig,
) -> tuple[np.ndarray, list[_Event]]:
    sr = cfg.sample_rate
    duration = cfg.clip_duration
    if rng.random() < cfg.short_clip_prob:
        duration = float(rng.uniform(cfg.min_clip_duration, cfg.clip_duration))
    bird = _Individual(primary, rng, cfg.variation)
    calls = [bird.call(rng, sr)]
    duration = max(duration, len(calls[0]) / sr + 2 * _CALL_MARGIN)
    n = int(round(duration * sr))
    margin = int(_CALL_MARGIN * sr)
    max_calls = max(1, int((duration - 2 * _CALL_MARGIN) / (primary.duration + 0.5)))
    for _ in range(int(rng.integers(1, min(max_calls, 5) + 1)) - 1):
        calls.append(bird.call(rng, sr))
    while sum(map(len, calls)) > n - 2 * margin:
        calls.pop()
    noise_rms = _noise_level(rng)
    out = render_background(n, rng=rng, sample_rate=sr, chorus_species=nontarget)
    out *= np.float32(noise_rms)
    events = []
    # Spread the focal calls with random gaps (Dirichlet split of the free time): they never overlap.
    free = n - 2 * margin - sum(map(len, calls))
    gaps = np.floor(rng.dirichlet(np.ones(len(calls) + 1)) * free).astype(int)
    base_snr = _clip_snr(rng, cfg.snr_db)
    offset = margin
    for gap, call in zip(gaps, calls):
        offset += int(gap)
        _add_call(out, call, offset, noise_rms=noise_rms, snr_db=_clip_snr(rng, cfg.snr_db, base_snr))
        events.append(_Event.at(offset, len(call), primary.code, sr))
        offset += len(call)
    if others and rng.random() < cfg.secondary_prob:
        count = 1 if (len(others) == 1 or rng.random() < 0.8) else 2
        for index in rng.choice(len(others), size=count, replace=False):
            spec = others[int(index)]
            other = _Individual(spec, rng, cfg.variation)
            other_snr = _clip_snr(rng, cfg.snr_db)
            for _ in range(int(rng.integers(1, 3))):
                call = other.call(rng, sr)
                if len(call) > n - 2 * margin:
                    continue
                start = int(rng.integers(margin, n - margin - len(call) + 1))
                _add_call(out, call, start, noise_rms=noise_rms, snr_db=_clip_snr(rng, cfg.snr_db, other_snr))
                events.append(_Event.at(start, len(call), spec.code, sr))
    _limit_peak(out)
    return out, sorted(events)


def _render_background_clip(
    rng: np.random.Generator, *, nontarget: Sequence[SpeciesSpec], cfg: SynthConfig
) -> np.ndarray:
    n = int(round(cfg.clip_duration * cfg.sample_rate))
    out = render_background(n, rng=rng, sample_rate=cfg.sample_rate, chorus_species=nontarget)
    out *= np.float32(_noise_level(rng))
    _limit_peak(out)
    return out


def _render_soundscape(
    rng: np.random.Generator,
    *,
    index: int,
    species: Sequence[SpeciesSpec],
    nontarget: Sequence[SpeciesSpec],
    cfg: SynthConfig,
) -> tuple[np.ndarray, list[_Event]]:
    """Background plus bouts of calls. Species ``i`` with ``i % num_soundscapes == index`` always sings."""
    sr, duration = cfg.sample_rate, cfg.soundscape_duration
    n = int(round(duration * sr))
    num_windows = _num_windows(duration)
    out = np.empty(n, dtype=np.float32)
    render_background(n, rng=rng, sample_rate=sr, chorus_species=nontarget, out=out)
    noise_rms = _noise_level(rng)
    out *= np.float32(noise_rms)
    quiet = np.zeros(num_windows, dtype=bool)
    quiet[rng.choice(num_windows, size=int(round(cfg.empty_window_fraction * num_windows)), replace=False)] = True

    def fits(start: int, length: int) -> bool:
        if start < 0 or start + length > n:
            return False
        first, last = start // (WINDOW_DURATION * sr), (start + length - 1) // (WINDOW_DURATION * sr)
        return not quiet[first : last + 1].any()

    events: list[_Event] = []
    for i, spec in enumerate(species):
        guaranteed = i % cfg.num_soundscapes == index
        if not guaranteed and rng.random() >= 0.5:
            continue
        num_bouts = int(rng.poisson(cfg.bouts_per_minute * duration / 60.0))
        placed = 0
        for bout in range(max(num_bouts, int(guaranteed))):
            bird = _Individual(spec, rng, cfg.variation)
            snr = _clip_snr(rng, cfg.snr_db)
            gap = rng.uniform(0.3, 2.0)
            t = rng.uniform(-2.0, duration - 1.0)
            end = t + rng.uniform(3.0, 15.0)
            while t < end:
                call = bird.call(rng, sr)
                start = int(round(t * sr))
                if fits(start, len(call)):
                    _add_call(out, call, start, noise_rms=noise_rms, snr_db=_clip_snr(rng, cfg.snr_db, snr))
                    events.append(_Event.at(start, len(call), spec.code, sr))
                    placed += 1
                t += len(call) / sr + gap * rng.uniform(0.7, 1.3)
        for _ in range(200 if guaranteed and not placed else 0):  # make sure it sings at least once
            call = _Individual(spec, rng, cfg.variation).call(rng, sr)
            start = int(rng.integers(0, max(1, n - len(call))))
            if fits(start, len(call)):
                _add_call(out, call, start, noise_rms=noise_rms, snr_db=_clip_snr(rng, cfg.snr_db))
                events.append(_Event.at(start, len(call), spec.code, sr))
                break
    _limit_peak(out)
    return out, sorted(events)


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV atomically (see :mod:`birdcall.fileio`)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _seconds(value: float) -> str:
    return f"{value:.{_TIME_DECIMALS}f}"


def _has_marker(root: Path) -> bool:
    """True when ``root`` holds the marker :func:`_write_marker` writes (a JSON object of our format)."""
    path = root / MARKER_FILE
    if not path.is_file() or path.is_symlink():
        return False
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == _MARKER_FORMAT


def _write_marker(root: Path, cfg: SynthConfig) -> None:
    """Claim ``root`` for synth before any output is written, so that a killed run can still be overwritten."""
    marker = {"format": _MARKER_FORMAT, "version": _MARKER_VERSION, "birdcall": __version__, "seed": cfg.seed}
    atomic_write_text(root / MARKER_FILE, json.dumps(marker) + "\n")


def _prepare_dir(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise ParameterError(f"{root}: exists and is not a directory")
    existing = [name for name in (*_OUTPUT_DIRS, *_OUTPUT_FILES) if (root / name).exists() or (root / name).is_symlink()]
    if existing and not overwrite:
        raise ParameterError(
            f"{root}: already holds a data set ({', '.join(existing)}); pass overwrite=True (--overwrite) to replace it"
        )
    if existing and not _has_marker(root):  # e.g. a real data set: overwrite would delete its train_audio/
        raise ParameterError(
            f"{root}: holds {', '.join(existing)} but was not written by `birdcall synth` (no {MARKER_FILE}); "
            "refusing to overwrite it: choose another folder or delete those files yourself"
        )
    for name in existing:  # only our own outputs are removed; anything else in the folder is left alone
        target = root / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    root.mkdir(parents=True, exist_ok=True)


def make_dataset(
    out_dir: Pathlike,
    config: SynthConfig | None = None,
    *,
    overwrite: bool = False,
    show_progress: bool = False,
    **fields: Any,
) -> SynthDataset:
    """Generate and write the synthetic chorus data set (layout and label rule in the module docstring).

    Args:
        out_dir: destination folder (created if needed).
        config: every knob of the data set (:class:`SynthConfig`); None: its defaults.
        **fields: :class:`SynthConfig` fields replacing those of ``config`` (``num_species=4``), described here:
        num_species: target species (those in ``taxonomy.csv``), drawn by ``species_bank(num_species, seed=seed)``.
        seed: the whole data set is a function of the arguments; the seed picks one of them.
        clips_per_species: training clips per species (the species is the clip's primary label).
        num_background: noise-only clips in ``background/``.
        num_soundscapes: continuous recordings in ``soundscapes/`` (0 writes no solution rows).
        soundscape_duration: seconds per soundscape; need not be a multiple of 5 (the last window is short).
        clip_duration: duration of a training and background clip in seconds.
        min_clip_duration: shortest training clip; a fraction ``short_clip_prob`` of clips is drawn uniformly
            in ``[min_clip_duration, clip_duration]``.
        short_clip_prob: fraction of training clips shorter than ``clip_duration``.
        secondary_prob: fraction of training clips with one (80 %) or two other target species calling too.
        snr_db: range of call SNRs in dB (difficulty knob): per clip or bout a level is drawn uniformly in the
            range, and each call varies around it by 1 dB (clipped to the range).
        variation: scales the per-individual pitch and tempo variation of every species (difficulty knob).
        num_nontarget: unlabelled species heard only in the distant chorus of backgrounds (difficulty knob).
        bouts_per_minute: mean song bouts per minute of each active species in a soundscape (density knob).
        empty_window_fraction: fraction of each soundscape's windows kept free of calls (more may be empty).
        sample_rate: audio rate in Hz (at least 24 kHz: calls reach 10.5 kHz plus pitch variation).
        audio_format: ``ogg`` (Vorbis), ``flac`` or ``wav`` (16-bit PCM).
        overwrite: replace the outputs of an earlier :func:`make_dataset` run in ``out_dir`` (recognised by
            its marker file, `MARKER_FILE`); without it such outputs raise. A folder whose outputs synth did not
            write (no marker) is never replaced.
        show_progress: show a progress bar over the files written.

    Returns:
        A :class:`SynthDataset` describing what was written.

    Raises:
        ParameterError: an argument out of range, or ``out_dir`` already holds a data set and not ``overwrite``,
            or holds one that synth did not write.

    Example:
        >>> ds = make_dataset(tmp_path / "synth", num_species=4, clips_per_species=3,
        ...                   soundscape_duration=30, audio_format="flac")  # doctest: +SKIP
        >>> ds.solution_path.name  # doctest: +SKIP
        'solution.csv'
    """
    cfg = replace(config if config is not None else SynthConfig(), **fields)
    root = Path(out_dir)
    _prepare_dir(root, overwrite)
    _write_marker(root, cfg)
    return _generate(root, cfg, show_progress=show_progress)


def _generate(root: Path, cfg: SynthConfig, *, show_progress: bool = False) -> SynthDataset:
    sr, ext = cfg.sample_rate, cfg.audio_format
    species = _make_bank(cfg.num_species, np.random.default_rng(cfg.seed))  # == species_bank(num_species, seed=seed)
    nontarget_seq, train_seq, background_seq, soundscape_seq = np.random.SeedSequence(cfg.seed).spawn(4)
    nontarget = (
        _make_bank(
            cfg.num_nontarget,
            np.random.default_rng(nontarget_seq),
            taken_codes={s.code for s in species},
            taken_names={s.common_name for s in species},
            taxon="nontarget",
        )
        if cfg.num_nontarget
        else []
    )
    source = f"birdcall.synth {__version__} seed={cfg.seed}"

    total_files = cfg.num_species * cfg.clips_per_species + cfg.num_background + cfg.num_soundscapes
    with make_progress(disable=not show_progress) as progress:
        task = progress.add_task("synthesise", total=total_files, rate="")
        # Training clips.
        metadata_rows, event_rows, train_files = [], [], []
        clip_seeds = train_seq.spawn(cfg.num_species * cfg.clips_per_species)
        for s, spec in enumerate(species):
            others = [other for other in species if other.code != spec.code]
            for j in range(cfg.clips_per_species):
                rng = np.random.default_rng(clip_seeds[s * cfg.clips_per_species + j])
                audio, events = _render_train_clip(rng, primary=spec, others=others, nontarget=nontarget, cfg=cfg)
                name = f"{spec.code}/{spec.code}_{j + 1:04d}.{ext}"
                write_audio(root / TRAIN_AUDIO / name, audio, sr)
                progress.advance(task)
                secondary = sorted({e.code for e in events} - {spec.code})
                metadata_rows.append(
                    [name, spec.code, str(secondary), " ".join(sorted([spec.code, *secondary])), "call",
                     f"{len(audio) / sr:.3f}", spec.scientific_name, spec.common_name, source]
                )  # fmt: skip
                event_rows.extend(
                    [f"{TRAIN_AUDIO}/{name}", _seconds(e.start), _seconds(e.end), e.code, "call"] for e in events
                )
                train_files.append(name)

        # Background clips.
        background_files = []
        for j, seq in enumerate(background_seq.spawn(cfg.num_background)):
            audio = _render_background_clip(np.random.default_rng(seq), nontarget=nontarget, cfg=cfg)
            name = f"{BACKGROUND}/background_{j + 1:04d}.{ext}"
            write_audio(root / name, audio, sr)
            progress.advance(task)
            background_files.append(name)

        # Soundscapes, one at a time (each is rendered in memory: 4 bytes per sample).
        codes = [spec.code for spec in species]
        solution_rows, soundscape_event_rows, soundscape_files = [], [], []
        for k, seq in enumerate(soundscape_seq.spawn(cfg.num_soundscapes)):
            stem = f"soundscape_{k + 1:04d}"
            audio, events = _render_soundscape(
                np.random.default_rng(seq), index=k, species=species, nontarget=nontarget, cfg=cfg
            )
            name = f"{SOUNDSCAPES}/{stem}.{ext}"
            write_audio(root / name, audio, sr)
            del audio
            progress.advance(task)
            soundscape_files.append(name)
            soundscape_event_rows.extend([stem, _seconds(e.start), _seconds(e.end), e.code] for e in events)
            labels = window_labels(events, duration=cfg.soundscape_duration, species_codes=codes)
            solution_rows.extend([f"{stem}_{(w + 1) * WINDOW_DURATION}", *row.tolist()] for w, row in enumerate(labels))

    # Tables last: a data set without them is visibly incomplete.
    _write_csv(root / TAXONOMY, ["species_code", "scientific_name", "common_name", "taxon"],
               ([s.code, s.scientific_name, s.common_name, s.taxon] for s in species))  # fmt: skip
    _write_csv(root / TRAIN_METADATA,
               ["filename", "primary_label", "secondary_labels", "labels", "sound_types", "duration",
                "scientific_name", "common_name", "source"], metadata_rows)  # fmt: skip
    _write_csv(root / TRAIN_EVENTS, ["filename", "start", "end", "species_code", "sound_type"], event_rows)
    _write_csv(root / SOUNDSCAPE_EVENTS, ["soundscape", "start", "end", "species_code"], soundscape_event_rows)
    _write_csv(root / SOLUTION, ["row_id", *codes], solution_rows)
    atomic_write_text(root / CONFIG_FILE, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return SynthDataset(
        root=root,
        config=cfg,
        species=tuple(species),
        nontarget_species=tuple(nontarget),
        train_files=tuple(train_files),
        background_files=tuple(background_files),
        soundscape_files=tuple(soundscape_files),
        num_windows=len(solution_rows),
    )
