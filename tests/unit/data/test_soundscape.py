"""Soundscape assembler: window labels at window edges, placement invariants, seeded determinism, the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.audio import load, write_audio
from birdcall.data.soundscape import (
    SoundscapeConfig,
    SourceClip,
    assemble_soundscapes,
    plan_soundscapes,
    window_labels,
)
from birdcall.errors import ParameterError
from birdcall.testing.signals import pink_noise, tone

SR = 32_000


def test_call_cut_at_a_window_edge_marks_the_window_holding_enough_of_it():
    # 0.5-s call over the 5-s edge: needs min(0.3, 0.25) = 0.25 s; 0.1 s falls in window 0, 0.4 s in window 1
    labels = window_labels([(4.9, 5.4, "a")], duration=10.0, species_codes=["a", "b"])
    np.testing.assert_array_equal(labels, np.array([[0, 0], [1, 0]], dtype=np.uint8))
    assert labels.dtype == np.uint8


def test_short_call_split_evenly_marks_both_windows_and_long_call_needs_the_fixed_overlap():
    # 40-ms call split 20/20 ms: each half is 50 % of the call -> both windows
    both = window_labels([(4.98, 5.02, "a")], duration=10.0, species_codes=["a"])
    np.testing.assert_array_equal(both[:, 0], [1, 1])
    # 2-s call with 0.2 s in window 1: below the 0.3-s rule -> only window 0
    long_call = window_labels([(3.2, 5.2, "a")], duration=10.0, species_codes=["a"])
    np.testing.assert_array_equal(long_call[:, 0], [1, 0])


def test_window_labels_ignore_unknown_codes_and_round_up_the_window_count():
    labels = window_labels([(1.0, 2.0, "zzz"), (11.0, 11.5, "b")], duration=11.0, species_codes=["a", "b"])
    assert labels.shape == (3, 2)
    np.testing.assert_array_equal(labels.sum(axis=0), [0, 1])
    with pytest.raises(ParameterError, match="duration"):
        window_labels([], duration=0.0, species_codes=["a"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 29.9), st.floats(0.005, 5.0)), min_size=1, max_size=20))
def test_every_call_inside_the_recording_marks_at_least_one_window_and_only_windows_it_touches(calls):
    events = [(s, min(s + d, 30.0), "a") for s, d in calls]
    labels = window_labels(events, duration=30.0, species_codes=["a"])[:, 0]
    touched = np.zeros(6, dtype=bool)
    for s, e, _ in events:
        touched[int(s // 5) : int(min(e, 29.999) // 5) + 1] = True
        assert labels[int(s // 5) : int(min(e, 29.999) // 5) + 1].any()
    assert not labels[~touched].any()


def _clips(n: int, *, duration: float = 2.0) -> list[SourceClip]:
    codes = ["a", "b", "c"]
    return [SourceClip(path=__import__("pathlib").Path(f"c{i}.ogg"), duration=duration, labels=(codes[i % 3],)) for i in range(n)]


def test_plan_places_every_clip_once_inside_its_recording_off_the_grid():
    config = SoundscapeConfig(duration=20.0, overlap_probability=0.5, seed=3)
    clips = _clips(40)
    plans = plan_soundscapes(clips, config, np.random.default_rng(3))
    placed = sorted(p.clip for plan in plans for p in plan)
    assert placed == list(range(40))
    starts = np.array([p.start for plan in plans for p in plan])
    assert ((starts >= 0) & (starts + 2.0 <= 20.0 + 1e-9)).all()
    assert np.mean(np.isclose(starts % 5.0, 0.0)) < 0.2  # not laid on the 5-s grid
    for plan in plans:  # overlapping clips never share a species
        for first, second in zip(plan, plan[1:]):
            if second.start < first.start + 2.0:
                assert clips[first.clip].labels != clips[second.clip].labels


def test_plan_is_seeded_and_refuses_a_clip_longer_than_a_recording():
    config = SoundscapeConfig(duration=10.0)
    first = plan_soundscapes(_clips(12), config, np.random.default_rng(0))
    again = plan_soundscapes(_clips(12), config, np.random.default_rng(0))
    other = plan_soundscapes(_clips(12), config, np.random.default_rng(1))
    assert first == again and first != other
    with pytest.raises(ParameterError, match="does not fit"):
        plan_soundscapes(_clips(1, duration=11.0), config, np.random.default_rng(0))


@pytest.mark.parametrize(
    "bad",
    [{"duration": 7.0}, {"window": 0.0}, {"snr_db": (5.0, 1.0)}, {"overlap_probability": 1.5}, {"gap_mean": float("nan")}],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ParameterError):
        SoundscapeConfig(**bad)


@pytest.fixture
def sources(tmp_path):
    """Three tone clips (one species each, 1 kHz / 3 kHz / 6 kHz) with annotated calls, two noise backgrounds."""
    clips = []
    for i, (code, freq) in enumerate([("lo", 1000.0), ("mid", 3000.0), ("hi", 6000.0)]):
        path = write_audio(tmp_path / "clips" / f"{code}.ogg", tone(frequency_hz=freq, duration=1.5, sample_rate=SR, amplitude=0.3), SR)
        clips.append(SourceClip(path, 1.5, (code,), ((0.25, 1.25, code),)))
    rng = np.random.default_rng(0)
    backgrounds = [
        write_audio(tmp_path / "bg" / f"bg{i}.ogg", pink_noise(duration=3.0, sample_rate=SR, rng=rng, rms=0.05), SR)
        for i in range(2)
    ]
    return clips, backgrounds


def test_assemble_writes_recordings_whose_labels_follow_the_placed_calls(tmp_path, sources):
    clips, backgrounds = sources
    config = SoundscapeConfig(duration=10.0, snr_db=(20.0, 20.0), overlap_probability=0.0, seed=5)
    solution = assemble_soundscapes(clips, backgrounds, tmp_path / "out", species_codes=["lo", "mid", "hi"], config=config)
    placements = pd.read_csv(tmp_path / "out" / "placements.csv")
    events = pd.read_csv(tmp_path / "out" / "events.csv")
    assert list(solution.columns) == ["row_id", "lo", "mid", "hi"]
    assert solution.equals(pd.read_csv(tmp_path / "out" / "solution.csv"))
    assert len(placements) == 3 and len(events) == 3
    # each call is shifted by its clip's offset and the solution marks the window holding most of it
    for row in placements.itertuples():
        code = row.clip.split("/")[-1].split(".")[0]
        event = events[(events.recording == row.recording) & (events.species_code == code)].iloc[0]
        assert event.start == pytest.approx(row.start + 0.25, abs=1e-3)
        middle = (event.start + event.end) / 2
        assert solution.loc[solution.row_id == f"{row.recording}_{int(middle // 5 + 1) * 5}", code].item() == 1
        # the tone is really there: its frequency dominates the placed second of audio
        audio = load(tmp_path / "out" / "soundscapes" / f"{row.recording}.ogg")
        part = audio[int((row.start + 0.3) * SR) : int((row.start + 1.2) * SR)]
        peak_hz = np.argmax(np.abs(np.fft.rfft(part))) * SR / part.size
        assert peak_hz == pytest.approx({"lo": 1000, "mid": 3000, "hi": 6000}[code], rel=0.02)
    assert solution[["lo", "mid", "hi"]].to_numpy().sum() >= 3


def test_assemble_is_deterministic_for_a_seed(tmp_path, sources):
    clips, backgrounds = sources
    config = SoundscapeConfig(duration=10.0, seed=11)
    a = assemble_soundscapes(clips, backgrounds, tmp_path / "a", species_codes=["lo", "mid", "hi"], config=config)
    b = assemble_soundscapes(clips, backgrounds, tmp_path / "b", species_codes=["lo", "mid", "hi"], config=config)
    assert a.equals(b)
    for f in sorted((tmp_path / "a" / "soundscapes").glob("*.ogg")):
        np.testing.assert_allclose(load(f), load(tmp_path / "b" / "soundscapes" / f.name), atol=1e-6)
    assert (tmp_path / "a" / "placements.csv").read_text() == (tmp_path / "b" / "placements.csv").read_text()


def test_assemble_refuses_no_backgrounds_and_unsafe_prefix(tmp_path, sources):
    clips, backgrounds = sources
    with pytest.raises(ParameterError, match="background"):
        assemble_soundscapes(clips, [], tmp_path / "o", species_codes=["lo"], config=SoundscapeConfig(duration=10.0))
    with pytest.raises(ParameterError, match="prefix"):
        assemble_soundscapes(clips, backgrounds, tmp_path / "o", species_codes=["lo"], prefix="../x")


# ---------------------------------------------------------------------------------------------- training windows


def test_mix_window_places_the_clip_at_the_drawn_offset_and_labels_by_the_calls_inside():
    from birdcall.data.soundscape import WindowMixConfig, mix_window

    rate, n = 1000, 5000
    clip = np.ones(2000, dtype=np.float32)
    calls = [(0.1, 0.3, "a"), (1.5, 1.9, "b")]  # a near the clip's start, b near its end
    config = WindowMixConfig(p=1.0, min_visible=0.5, snr_db=(10.0, 10.0), fade=0.0)
    seen = set()
    for seed in range(60):
        bed = np.full(n, 0.01, dtype=np.float32)
        y, target = mix_window([(clip, calls)], bed, sample_rate=rate, species_codes=["a", "b", "c"], config=config,
                               rng=np.random.default_rng(seed))  # fmt: skip
        assert y.dtype == np.float32 and target.dtype == np.float32 and y.shape == (n,)
        inside = np.flatnonzero(y > 0.02)  # where the clip landed (at 10 dB over the bed: 0.0316 + 0.01)
        start, stop = inside[0] / rate, (inside[-1] + 1) / rate
        assert stop - start >= 0.5 - 1e-9  # at least min_visible of it stays in the window
        offset = start if start > 0 else stop - 2.0  # the clip's start, possibly before the window
        expect = window_labels([(s + offset, e + offset, c) for s, e, c in calls], duration=5.0, species_codes=["a", "b", "c"])[0]
        np.testing.assert_array_equal(target, expect.astype(np.float32))
        assert target[2] == 0
        seen.add(tuple(target.tolist()))
    assert {(1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)} <= seen  # cut at the right edge and at the left one


def _mixed_dataset(tmp_path, p):
    from birdcall.data.mixed_windows import MixedWindowDataset
    from birdcall.data.soundscape import WindowMixConfig
    from birdcall.features import FeatureConfig

    rate = 16_000
    features = FeatureConfig(sample_rate=rate, clip_duration=2.0, n_fft=512, hop_length=256, n_mels=32, fmax=8000.0)
    audio = {Path(f"c{i}"): tone(frequency_hz=500.0 * (i + 1), duration=1.0, sample_rate=rate, amplitude=0.3) for i in range(3)}
    audio[Path("bg")] = pink_noise(duration=3.0, sample_rate=rate, rng=np.random.default_rng(0), rms=0.01)
    calls = [[(0.2, 0.8, "a")], [(0.0, 1.0, "b")], [(0.4, 0.5, "c")]]
    targets = np.eye(3, dtype=np.float32)
    ds = MixedWindowDataset(
        [Path("c0"), Path("c1"), Path("c2")], targets, calls, species_codes=["a", "b", "c"], backgrounds=[Path("bg")],
        features=features, config=WindowMixConfig(p=p, extra_clips=2), read=audio.__getitem__, seed=3,
    )  # fmt: skip
    return ds


def test_mixed_dataset_is_seeded_per_item_and_epoch_and_keeps_plain_items_when_p_is_zero(tmp_path):
    ds = _mixed_dataset(tmp_path, 0.7)
    first = [ds.item(i) for i in range(3)]
    again = [ds.item(i) for i in range(3)]
    for (y1, t1, m1), (y2, t2, m2) in zip(first, again):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(t1, t2)
        assert m1 == m2
    ds.set_epoch(1)
    assert any(not np.array_equal(a[0], ds.item(i)[0]) for i, a in enumerate(first))
    mixed = [ds.item(i)[2] for i in range(3) for ds.epoch in range(20)]
    assert 0.5 < np.mean(mixed) < 0.9  # about p of the items are mixed
    plain = _mixed_dataset(tmp_path, 0.0)
    for i in range(3):
        y, target, was_mixed = plain.item(i)
        assert not was_mixed and y.shape == (32_000,)
        np.testing.assert_array_equal(target, np.eye(3, dtype=np.float32)[i])
    x, t = plain[0]
    assert tuple(x.shape) == (32_000,) and tuple(t.shape) == (3,)


def test_mixed_windows_hold_their_own_clip_when_its_call_is_inside():
    ds = _mixed_dataset(None, 1.0)
    others = []
    for ds.epoch in range(30):
        y, target, mixed = ds.item(1)  # clip 1 calls over its whole second: at least 0.5 s of it is inside
        assert mixed and target[1] == 1.0 and y.shape == (32_000,)
        others.append(target[0] + target[2])
    assert 0 < np.mean(np.array(others) > 0) < 1  # extra clips come and go (0..2 of them, cut or not)


def test_mixed_dataset_without_backgrounds_mixes_over_silence():
    from birdcall.data.mixed_windows import MixedWindowDataset
    from birdcall.data.soundscape import WindowMixConfig
    from birdcall.features import FeatureConfig

    features = FeatureConfig(sample_rate=8000, fmax=4000.0, n_fft=512, hop_length=256, n_mels=32, clip_duration=2.0)
    clip = np.full(8000, 0.5, dtype=np.float32)  # a 1-s call filling its clip
    dataset = MixedWindowDataset([Path("a")], np.ones((1, 1)), [[(0.0, 1.0, "a")]], species_codes=["a"], backgrounds=[],
                                 features=features, config=WindowMixConfig(p=1.0), read=lambda p: clip)  # fmt: skip
    hits = 0
    for epoch in range(8):
        dataset.set_epoch(epoch)
        y, target, mixed = dataset.item(0)
        assert mixed and y.shape == (16000,)
        assert (y == 0).sum() >= 8000 - 1  # outside the 1-s clip the bed is silent
        hits += int(target[0] == 1)
    assert hits > 0  # and the call is labelled when it lies in the window
