"""Synthetic bird species and their calls.

Each :class:`SpeciesSpec` describes one fake species: a plausible genus + species name, a six-letter eBird-style
code (first three letters of each name), a call *family* and the family's parameters (frequency band, call and
note durations, tempo, number of harmonics, modulation rate). :func:`species_bank` draws a reproducible set of
species whose bands partly overlap, and :func:`render_call` synthesises one call of one individual.

Call families (``CALL_FAMILIES``):

* ``sweep``: one tonal note whose pitch glides across the band, up, down, U-shaped (``u``) or arched (``n``).
* ``trill``: a fast train (10-25 notes per second) of very short down- or up-swept notes.
* ``harmonic``: a harmonic stack (fundamental plus 2-5 harmonics) with a slight arched pitch contour.
* ``buzz``: band-limited noise with a fast amplitude modulation (40-120 Hz).
* ``repeated``: a few notes of nearly constant pitch at a fixed, slow tempo (2.5-7 notes per second).
* ``warble``: a tone frequency-modulated at 5-15 Hz across the band.
* ``two_note``: two flat notes, a high then a low one (``down``) or the reverse (``up``).

Every note has a raised-cosine attack and release of a few milliseconds, so calls start and end without clicks.
Per-individual variation: each rendering draws a pitch factor (log-normal, ``pitch_jitter`` relative std) and a
tempo factor (``tempo_jitter``), both clipped at 2.5 standard deviations; the overall level is set by whoever mixes
the call (see :mod:`birdcall.synth.dataset`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal as _signal

from .._validate import check_int, is_int
from ..errors import ParameterError

__all__ = ["CALL_FAMILIES", "SpeciesSpec", "species_bank", "render_call"]

CALL_FAMILIES = ("sweep", "trill", "harmonic", "buzz", "repeated", "warble", "two_note")
SHAPES = ("up", "down", "u", "n", "flat")

MAX_SPECIES = 250
"""Upper bound on the size of a bank (the name generator runs out of plausible unique names beyond it)."""

_CENTER_RANGE_HZ = (1_400.0, 7_000.0)  # geometric band centres of a bank are spread over this range
_MAX_HIGH_HZ = 10_500.0  # no species has energy above this (so 24 kHz sampling is enough)
_JITTER_CLIP = 2.5  # variation factors are clipped at this many standard deviations
_CODE_RE = re.compile(r"^[a-z0-9]+$")


@dataclass(frozen=True)
class SpeciesSpec:
    """One synthetic species: identity, call family and the parameters of its call.

    Attributes:
        code: species code (lower-case letters/digits, e.g. ``"acrpal"``).
        scientific_name: fake binomial name, e.g. ``"Acrocola palustris"``.
        common_name: fake English name, e.g. ``"Rufous Reedling"``.
        family: one of ``CALL_FAMILIES``.
        low_hz: lowest frequency of the call's energy (before individual pitch variation).
        high_hz: highest frequency of the call's energy (for ``harmonic``, of the top harmonic).
        duration: nominal call duration in seconds.
        note_duration: duration of one note for multi-note families (``trill``, ``repeated``, ``two_note``);
            equal to ``duration`` otherwise.
        num_notes: notes per call (1 for single-note families).
        shape: pitch contour of a note: ``up``, ``down``, ``u``, ``n`` or ``flat``.
        num_harmonics: partials in the call (1 = pure tone; only ``harmonic`` uses more).
        modulation_hz: frequency-modulation rate (``warble``) or amplitude-modulation rate (``buzz``); 0 otherwise.
        pitch_jitter: relative standard deviation of the per-individual pitch factor.
        tempo_jitter: relative standard deviation of the per-individual tempo (duration) factor.
        taxon: taxon group written to ``taxonomy.csv``.
    """

    code: str
    scientific_name: str
    common_name: str
    family: str
    low_hz: float
    high_hz: float
    duration: float
    note_duration: float
    num_notes: int = 1
    shape: str = "flat"
    num_harmonics: int = 1
    modulation_hz: float = 0.0
    pitch_jitter: float = 0.03
    tempo_jitter: float = 0.08
    taxon: str = "bird"

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
            raise ParameterError(f"SpeciesSpec: code must be lower-case letters/digits, got {self.code!r}")
        if self.family not in CALL_FAMILIES:
            raise ParameterError(f"SpeciesSpec {self.code}: family must be one of {CALL_FAMILIES}, got {self.family!r}")
        if self.shape not in SHAPES:
            raise ParameterError(f"SpeciesSpec {self.code}: shape must be one of {SHAPES}, got {self.shape!r}")
        if not 0 < self.low_hz < self.high_hz:
            raise ParameterError(
                f"SpeciesSpec {self.code}: need 0 < low_hz < high_hz, got {self.low_hz}, {self.high_hz}"
            )
        if not 0 < self.note_duration <= self.duration:
            raise ParameterError(
                f"SpeciesSpec {self.code}: need 0 < note_duration <= duration, "
                f"got {self.note_duration}, {self.duration}"
            )
        if self.num_notes < 1 or self.num_harmonics < 1 or self.modulation_hz < 0:
            raise ParameterError(f"SpeciesSpec {self.code}: num_notes, num_harmonics must be >= 1, modulation_hz >= 0")
        if not 0 <= self.pitch_jitter < 0.3 or not 0 <= self.tempo_jitter < 0.5:
            raise ParameterError(
                f"SpeciesSpec {self.code}: need 0 <= pitch_jitter < 0.3 and 0 <= tempo_jitter < 0.5, "
                f"got {self.pitch_jitter}, {self.tempo_jitter}"
            )

    @property
    def center_hz(self) -> float:
        """Geometric centre of the band."""
        return math.sqrt(self.low_hz * self.high_hz)


# --------------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------------

_GENUS_STEMS = (
    "Acro", "Bradu", "Calli", "Dendro", "Eremo", "Falcu", "Garru", "Hylo", "Ixo", "Lani", "Melo", "Nycti",
    "Ortho", "Phyllo", "Pyrrho", "Saxi", "Turdi", "Vireo", "Zono", "Cisti", "Emberi", "Sylvi", "Anthi", "Parve",
    "Locu", "Monti", "Ptero", "Rhodo", "Thamno", "Xeno", "Ulu", "Keno",
)  # the first three letters of every stem are distinct
_GENUS_ENDINGS = ("cola", "ornis", "spiza", "thus", "ops", "phila", "ella", "ura", "cichla", "pus")
_EPITHET_STEMS = (
    "alb", "rufesc", "nigr", "flav", "ciner", "virid", "ocell", "montan", "palustr", "sylvestr", "striat",
    "macul", "gutt", "melan", "leuc", "chlor", "xanth", "brunn", "caerul", "olivac", "punct", "fusc", "lut",
    "hirund", "dorsal", "ventr", "capit", "juncid", "sabul", "temp", "querul", "sonor",
)  # likewise
_EPITHET_ENDINGS = ("us", "is", "atus", "ensis", "icola", "ipes", "ata", "ior")
_ADJECTIVES = (
    "Rufous", "Ashy", "Crested", "Spotted", "Streaked", "Olive", "Pale", "Dusky", "Golden", "Marsh", "Pine",
    "Reed", "Scaly", "Plain", "Lesser", "Greater", "Tawny", "Slaty", "Buff-throated", "Grey-headed",
)
_NOUNS = (
    "Warbler", "Finch", "Thrush", "Wren", "Bunting", "Tit", "Pipit", "Vireo", "Sparrow", "Flycatcher", "Babbler",
    "Tanager", "Lark", "Robin", "Chat", "Seedeater",
)


def _join(stem: str, ending: str) -> str:
    """``Zono`` + ``ornis`` -> ``Zonornis``: drop the stem's final vowel before a vowel."""
    if stem[-1] in "aeiou" and ending[0] in "aeiou":
        stem = stem[:-1]
    return stem + ending


def _draw_name(rng: np.random.Generator, taken_codes: set[str], taken_names: set[str]) -> tuple[str, str, str]:
    for _ in range(10_000):
        genus = _join(str(rng.choice(_GENUS_STEMS)), str(rng.choice(_GENUS_ENDINGS)))
        epithet = _join(str(rng.choice(_EPITHET_STEMS)), str(rng.choice(_EPITHET_ENDINGS)))
        code = (genus[:3] + epithet[:3]).lower()
        common = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if code not in taken_codes and common not in taken_names:
            taken_codes.add(code)
            taken_names.add(common)
            return code, f"{genus} {epithet}", common
    raise ParameterError("species_bank: ran out of unique species names")  # pragma: no cover (MAX_SPECIES guards)


# --------------------------------------------------------------------------------------------------------------
# Species bank
# --------------------------------------------------------------------------------------------------------------


def _draw_family_params(family: str, center: float, rng: np.random.Generator) -> dict:
    """Band, durations and pattern of one species of ``family`` centred near ``center`` Hz."""
    u = rng.uniform
    if family == "sweep":
        ratio, shape = u(1.35, 2.0), str(rng.choice(("up", "down", "u", "n")))
        duration = u(0.2, 0.7)
        params = dict(duration=duration, note_duration=duration, shape=shape)
    elif family == "trill":
        ratio, rate, notes = u(1.15, 1.45), u(10.0, 25.0), int(rng.integers(6, 19))
        params = dict(duration=notes / rate, note_duration=u(0.3, 0.6) / rate, num_notes=notes,
                      shape=str(rng.choice(("down", "up"))))
    elif family == "harmonic":
        harmonics = int(rng.integers(3, 6))
        ratio = harmonics * 1.06  # fundamental contour spans 6 %
        duration = u(0.2, 0.6)
        params = dict(duration=duration, note_duration=duration, shape="n", num_harmonics=harmonics)
    elif family == "buzz":
        ratio, duration = u(1.3, 1.8), u(0.3, 1.0)
        params = dict(duration=duration, note_duration=duration, modulation_hz=u(40.0, 120.0))
    elif family == "repeated":
        ratio, notes, interval = u(1.05, 1.2), int(rng.integers(3, 7)), u(0.15, 0.4)
        note = u(0.05, 0.6 * interval)
        params = dict(duration=(notes - 1) * interval + note, note_duration=note, num_notes=notes, shape="down")
    elif family == "warble":
        ratio, duration = u(1.2, 1.6), u(0.6, 1.4)
        params = dict(duration=duration, note_duration=duration, modulation_hz=u(5.0, 15.0))
    elif family == "two_note":
        ratio, note, gap = u(1.2, 1.6), u(0.1, 0.25), u(0.04, 0.12)
        params = dict(duration=2 * note + gap, note_duration=note, num_notes=2, shape=str(rng.choice(("down", "up"))))
    else:  # pragma: no cover (callers validate)
        raise ParameterError(f"unknown call family {family!r}")
    low, high = center / math.sqrt(ratio), center * math.sqrt(ratio)
    if high > _MAX_HIGH_HZ:  # keep every band below _MAX_HIGH_HZ
        low, high = low * _MAX_HIGH_HZ / high, _MAX_HIGH_HZ
    if family == "harmonic":  # the band is fundamental .. top harmonic: derive it from the fundamental
        high = low * params["num_harmonics"] * 1.06
    return dict(family=family, low_hz=round(low, 1), high_hz=round(high, 1), **params)


def _make_bank(
    num_species: int,
    rng: np.random.Generator,
    *,
    families: Sequence[str] = CALL_FAMILIES,
    taken_codes: set[str] | None = None,
    taken_names: set[str] | None = None,
    taxon: str = "bird",
) -> list[SpeciesSpec]:
    families = tuple(families)
    taken_codes = set() if taken_codes is None else taken_codes
    taken_names = set() if taken_names is None else taken_names
    lo, hi = np.log(_CENTER_RANGE_HZ[0]), np.log(_CENTER_RANGE_HZ[1])
    # Evenly spaced centres (log scale), jittered by up to half a step: neighbours' bands overlap.
    step = (hi - lo) / max(num_species, 1)
    centers = np.exp(lo + step * (np.arange(num_species) + 0.5 + rng.uniform(-0.4, 0.4, num_species)))
    # Families are dealt in a shuffled cycle along the frequency axis, so two species of the same family sit
    # len(families) steps apart in frequency.
    cycle = [families[i] for i in rng.permutation(len(families))]
    specs = []
    for index, center in enumerate(centers):
        family = cycle[index % len(cycle)]
        params = _draw_family_params(family, float(center), rng)
        code, scientific, common = _draw_name(rng, taken_codes, taken_names)
        specs.append(SpeciesSpec(code=code, scientific_name=scientific, common_name=common, taxon=taxon, **params))
    return sorted(specs, key=lambda spec: spec.code)


def species_bank(
    num_species: int, *, seed: int | np.random.SeedSequence, families: Sequence[str] = CALL_FAMILIES
) -> list[SpeciesSpec]:
    """Draw ``num_species`` distinct synthetic species, sorted by code.

    Band centres are spread evenly (log scale) over 1.4-7 kHz with random jitter; each band is wider than the
    spacing, so neighbouring species overlap in frequency and must be told apart by call shape and timing.
    Families are assigned along the frequency axis in a shuffled cycle, so species of one family are far apart.

    Args:
        num_species: number of species, 1 to ``MAX_SPECIES``.
        seed: integer seed or ``SeedSequence``; the same seed gives the same bank.
        families: call families to draw from (a subset of ``CALL_FAMILIES``).

    Returns:
        List of :class:`SpeciesSpec`, sorted by ``code``.

    Raises:
        ParameterError: ``num_species`` out of range, an unknown or empty ``families``.

    Example:
        >>> bank = species_bank(12, seed=0)
        >>> len(bank), len(bank[0].code)
        (12, 6)
    """
    check_int("num_species", num_species, min=1, max=MAX_SPECIES)
    families = tuple(families)
    unknown = [f for f in families if f not in CALL_FAMILIES]
    if not families or unknown:
        raise ParameterError(f"families must be a non-empty subset of {CALL_FAMILIES}, got {families}")
    return _make_bank(int(num_species), _generator(seed, "seed"), families=families)


def _generator(seed: int | np.random.SeedSequence, name: str) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if not is_int(seed) or seed < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


# --------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------


def _edge_envelope(num_samples: int, ramp: int) -> np.ndarray:
    """Flat envelope with raised-cosine ramps of ``ramp`` samples at both ends (starts and ends at 0)."""
    env = np.ones(num_samples)
    ramp = max(1, min(ramp, num_samples // 2))
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp] = rise
    env[num_samples - ramp :] = rise[::-1]
    return env


def _note_envelope(num_samples: int, sample_rate: int) -> np.ndarray:
    """Ramps of ~5 ms (at most a quarter of the note) times a gentle swell, so notes do not sound gated."""
    ramp = int(min(0.005 * sample_rate, num_samples / 4))
    t = np.linspace(0.0, 1.0, num_samples)
    swell = 0.6 + 0.4 * np.sin(np.pi * t)
    return _edge_envelope(num_samples, ramp) * swell


def _contour(shape: str, num_samples: int, low: float, high: float) -> np.ndarray:
    """Instantaneous frequency (Hz) of one note, interpolated on a log-frequency scale."""
    t = np.linspace(0.0, 1.0, num_samples)
    if shape == "up":
        x = t
    elif shape == "down":
        x = 1.0 - t
    elif shape == "u":
        x = (2.0 * t - 1.0) ** 2
    elif shape == "n":
        x = 1.0 - (2.0 * t - 1.0) ** 2
    else:
        x = np.full(num_samples, 0.5)
    return low * (high / low) ** x


def _tone(freq: np.ndarray, sample_rate: int, phase0: float) -> np.ndarray:
    return np.sin(phase0 + 2.0 * np.pi * np.cumsum(freq) / sample_rate)


def _jitter_factor(rng: np.random.Generator, std: float) -> float:
    if std <= 0:
        return 1.0
    return float(np.exp(np.clip(rng.standard_normal(), -_JITTER_CLIP, _JITTER_CLIP) * std))


def _place_notes(num_samples: int, starts: Sequence[int], notes: Sequence[np.ndarray]) -> np.ndarray:
    out = np.zeros(num_samples)
    for start, note in zip(starts, notes):
        stop = min(num_samples, start + len(note))
        out[start:stop] += note[: stop - start]
    return out


def render_call(
    spec: SpeciesSpec,
    *,
    rng: np.random.Generator,
    sample_rate: int = 32_000,
    variation: float = 1.0,
    pitch_scale: float | None = None,
    tempo_scale: float | None = None,
) -> np.ndarray:
    """Synthesise one call of ``spec``.

    Args:
        spec: the species.
        rng: source of all randomness (individual variation, phases, noise of buzzes).
        sample_rate: output rate in Hz; must exceed twice the highest frequency of the call.
        variation: multiplies ``spec.pitch_jitter`` and ``spec.tempo_jitter`` (0 renders the nominal call).
        pitch_scale: fixed pitch factor (e.g. one individual over a bout); None draws one from ``rng``.
        tempo_scale: fixed duration factor (> 1 is slower); None draws one from ``rng``.

    Returns:
        ``(num_samples,)`` float32 call with peak amplitude 1, starting and ending at (near) zero.

    Raises:
        ParameterError: negative ``variation``, non-positive scales, or a call too high for ``sample_rate``.
    """
    if not isinstance(spec, SpeciesSpec):
        raise ParameterError(f"render_call: spec must be a SpeciesSpec, got {type(spec).__name__}")
    check_int("sample_rate", sample_rate, min=1, owner="render_call")
    if not variation >= 0:
        raise ParameterError(f"render_call: variation must be >= 0, got {variation}")
    if pitch_scale is None:
        pitch_scale = _jitter_factor(rng, spec.pitch_jitter * variation)
    if tempo_scale is None:
        tempo_scale = _jitter_factor(rng, spec.tempo_jitter * variation)
    if not pitch_scale > 0 or not tempo_scale > 0:
        raise ParameterError(f"render_call: pitch_scale and tempo_scale must be > 0, got {pitch_scale}, {tempo_scale}")
    low, high = spec.low_hz * pitch_scale, spec.high_hz * pitch_scale
    if high >= 0.475 * sample_rate:
        raise ParameterError(
            f"render_call: {spec.code} reaches {high:.0f} Hz, too high for sample_rate {sample_rate} "
            f"(needs > {high / 0.475:.0f})"
        )
    sr = int(sample_rate)
    duration = spec.duration * tempo_scale
    note_duration = spec.note_duration * tempo_scale
    n_total = max(8, int(round(duration * sr)))
    n_note = max(8, int(round(note_duration * sr)))

    def phase() -> float:
        return float(rng.uniform(0.0, 2.0 * np.pi))

    family = spec.family
    if family == "sweep":
        y = _tone(_contour(spec.shape, n_total, low, high), sr, phase()) * _note_envelope(n_total, sr)
    elif family == "harmonic":
        f0 = _contour("n", n_total, low, low * 1.06)
        partials = [_tone(f0 * h, sr, phase()) / h**0.6 for h in range(1, spec.num_harmonics + 1)]
        y = np.sum(partials, axis=0) * _note_envelope(n_total, sr)
    elif family == "warble":
        t = np.arange(n_total) / sr
        rate = spec.modulation_hz / tempo_scale  # the FM rate follows the tempo, not the pitch
        m = 0.65 * np.sin(2 * np.pi * rate * t + phase()) + 0.35 * np.sin(2 * np.pi * 1.7 * rate * t + phase())
        center = math.sqrt(low * high)
        y = _tone(center * (high / low) ** (0.5 * m), sr, phase()) * _note_envelope(n_total, sr)
    elif family == "buzz":
        noise = rng.standard_normal(n_total + 256)
        sos = _signal.butter(4, [low * 1.04, high / 1.04], btype="bandpass", fs=sr, output="sos")
        band = _signal.sosfiltfilt(sos, noise)[128 : 128 + n_total]
        t = np.arange(n_total) / sr
        am = 1.0 - 0.8 * (0.5 - 0.5 * np.cos(2 * np.pi * spec.modulation_hz / tempo_scale * t + phase()))
        y = band * am * _note_envelope(n_total, sr)
    elif family in ("trill", "repeated"):
        starts = np.round(np.linspace(0, n_total - n_note, spec.num_notes)).astype(int)
        envelope = _note_envelope(n_note, sr)
        notes = [_tone(_contour(spec.shape, n_note, low, high), sr, phase()) * envelope for _ in starts]
        # slight level variation between notes, as in real trills
        notes = [note * rng.uniform(0.75, 1.0) for note in notes]
        y = _place_notes(n_total, starts, notes)
    elif family == "two_note":
        first, second = (high / 1.03, low) if spec.shape == "down" else (low, high / 1.03)
        envelope = _note_envelope(n_note, sr)
        notes = [_tone(np.linspace(f, f * 1.03, n_note), sr, phase()) * envelope for f in (first, second)]
        y = _place_notes(n_total, [0, n_total - n_note], notes)
    else:  # pragma: no cover (SpeciesSpec validates)
        raise ParameterError(f"unknown call family {family!r}")
    peak = float(np.max(np.abs(y)))
    if peak > 0:
        y = y / peak
    return y.astype(np.float32)
