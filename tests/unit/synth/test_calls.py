"""Synthetic species and call rendering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from birdcall.errors import ParameterError
from birdcall.synth import CALL_FAMILIES, SpeciesSpec, render_call, species_bank

SR = 32_000


def _spectrum(y: np.ndarray, sample_rate: int = SR) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(len(y)))) ** 2
    return np.fft.rfftfreq(len(y), 1.0 / sample_rate), power


def _band_fraction(y: np.ndarray, low: float, high: float) -> float:
    freqs, power = _spectrum(y)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


def test_species_bank_codes_names_and_order():
    bank = species_bank(40, seed=1)
    codes = [spec.code for spec in bank]
    assert len(bank) == 40
    assert codes == sorted(codes)
    assert len(set(codes)) == 40
    assert len({spec.common_name for spec in bank}) == 40
    for spec in bank:
        assert len(spec.code) == 6 and spec.code.isalpha() and spec.code.islower()
        genus, epithet = spec.scientific_name.split(" ")
        assert genus[0].isupper() and epithet.islower()
        assert spec.code == (genus[:3] + epithet[:3]).lower()  # eBird-style code from the binomial
        assert spec.taxon == "bird"
    assert set(spec.family for spec in bank) == set(CALL_FAMILIES)


def test_species_bank_is_deterministic_and_seed_dependent():
    assert species_bank(12, seed=7) == species_bank(12, seed=7)
    assert species_bank(12, seed=7) != species_bank(12, seed=8)


def test_species_bands_partly_overlap():
    bank = sorted(species_bank(12, seed=0), key=lambda spec: spec.center_hz)
    overlapping = sum(a.high_hz > b.low_hz for a, b in zip(bank, bank[1:]))
    assert overlapping >= 6  # most neighbours share part of their band: band energy alone does not identify them
    assert all(spec.high_hz <= 10_500.0 for spec in bank)
    # species of one family are spread out in frequency
    for family in CALL_FAMILIES:
        centers = sorted(spec.center_hz for spec in bank if spec.family == family)
        assert all(b / a > 1.3 for a, b in zip(centers, centers[1:]))


@pytest.mark.parametrize("family", CALL_FAMILIES)
def test_each_family_renders_finite_click_free_audio_in_its_band(family, rng):
    bank = species_bank(7, seed=3, families=[family])
    assert all(spec.family == family for spec in bank)
    for spec in bank:
        y = render_call(spec, rng=rng, sample_rate=SR, pitch_scale=1.0, tempo_scale=1.0)
        assert y.dtype == np.float32 and y.ndim == 1
        assert np.isfinite(y).all()
        assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)
        assert abs(len(y) / SR - spec.duration) < 2.0 / SR + 1e-9
        # smooth onset and offset: the first and last half millisecond are almost silent
        edge = int(0.0005 * SR)
        assert np.max(np.abs(y[:edge])) < 0.05 and np.max(np.abs(y[-edge:])) < 0.05
        freqs, power = _spectrum(y)
        peak = freqs[np.argmax(power)]
        centroid = float(np.sum(freqs * power) / np.sum(power))
        assert spec.low_hz * 0.97 <= peak <= spec.high_hz * 1.03, (spec, peak)
        assert spec.low_hz <= centroid <= spec.high_hz, (spec, centroid)
        assert _band_fraction(y, spec.low_hz * 0.95, spec.high_hz * 1.05) > 0.95


def test_families_have_distinct_temporal_patterns(rng):
    """Multi-note families have gaps (near-silent stretches); single-note tonal families do not."""

    def silent_fraction(y: np.ndarray) -> float:
        frames = np.abs(y[: len(y) // 160 * 160]).reshape(-1, 160).max(axis=1)  # 5-ms frames
        return float(np.mean(frames < 0.05))

    by_family = {spec.family: spec for spec in species_bank(7, seed=5)}
    render = lambda family: render_call(by_family[family], rng=rng, pitch_scale=1.0, tempo_scale=1.0)  # noqa: E731
    assert silent_fraction(render("repeated")) > 0.2
    assert silent_fraction(render("two_note")) > 0.05
    assert silent_fraction(render("sweep")) < 0.05
    assert silent_fraction(render("warble")) < 0.05


def test_pitch_and_tempo_scale(rng):
    spec = next(spec for spec in species_bank(7, seed=2) if spec.family == "sweep")
    base = render_call(spec, rng=np.random.default_rng(0), pitch_scale=1.0, tempo_scale=1.0)
    higher = render_call(spec, rng=np.random.default_rng(0), pitch_scale=1.1, tempo_scale=1.0)
    slower = render_call(spec, rng=np.random.default_rng(0), pitch_scale=1.0, tempo_scale=1.25)

    def centroid(y):
        freqs, power = _spectrum(y)
        return np.sum(freqs * power) / np.sum(power)

    assert centroid(higher) / centroid(base) == pytest.approx(1.1, rel=0.02)
    assert len(slower) / len(base) == pytest.approx(1.25, rel=0.01)


def test_individual_variation_is_seeded_and_scaled_by_variation():
    spec = species_bank(1, seed=4)[0]
    a = render_call(spec, rng=np.random.default_rng(11))
    b = render_call(spec, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    lengths = {len(render_call(spec, rng=np.random.default_rng(s))) for s in range(8)}
    assert len(lengths) > 4  # tempo differs between individuals
    nominal = {len(render_call(spec, rng=np.random.default_rng(s), variation=0.0)) for s in range(8)}
    assert nominal == {int(round(spec.duration * SR))}


def test_bad_parameters_raise(rng):
    spec = species_bank(1, seed=0)[0]
    with pytest.raises(ParameterError):
        species_bank(0, seed=0)
    with pytest.raises(ParameterError):
        species_bank(3, seed=-1)
    with pytest.raises(ParameterError):
        species_bank(3, seed=0, families=["hoot"])
    with pytest.raises(ParameterError):
        render_call(spec, rng=rng, variation=-1.0)
    with pytest.raises(ParameterError):
        render_call(spec, rng=rng, pitch_scale=0.0)
    with pytest.raises(ParameterError):
        too_high = dataclasses.replace(spec, low_hz=9000.0, high_hz=15000.0)
        render_call(too_high, rng=rng, sample_rate=SR, pitch_scale=1.05)
    with pytest.raises(ParameterError):
        dataclasses.replace(spec, family="hoot")
    with pytest.raises(ParameterError):
        dataclasses.replace(spec, low_hz=5000.0, high_hz=4000.0)
    with pytest.raises(ParameterError):
        dataclasses.replace(spec, code="Has Space")
    with pytest.raises(ParameterError):
        SpeciesSpec(code="abcdef", scientific_name="A b", common_name="A B", family="sweep",
                    low_hz=1000.0, high_hz=2000.0, duration=0.2, note_duration=0.5)  # fmt: skip
