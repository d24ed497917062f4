"""benchmarks/transfer_views.py: augmented copies of unlabelled recordings for a teacher to label."""

import numpy as np
import soundfile as sf


def _tone(freq, seconds=1.0, sr=32000, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_view_is_the_shifted_recording_plus_its_sources(load_benchmark):
    views = load_benchmark("transfer_views")
    y = _tone(1000.0)
    alone = views.make_view(y, other=None, bed=None, rng=np.random.default_rng(0))
    shift = int(np.random.default_rng(0).integers(0, y.size))
    np.testing.assert_array_equal(alone, np.roll(y, shift))  # only shifted: same samples, moved
    bed = np.full(y.size, 0.01, dtype=np.float32)
    with_bed = views.make_view(y, other=None, bed=bed, rng=np.random.default_rng(0))
    np.testing.assert_allclose(with_bed - alone, bed, atol=1e-6)
    loud = views.make_view(y, other=_tone(3000.0, amp=0.9), bed=None, rng=np.random.default_rng(0))
    assert loud.shape == y.shape and np.abs(loud).max() <= 0.9 + 1e-6  # the sum is kept from clipping
    spectrum = np.abs(np.fft.rfft(loud))
    assert spectrum[3000] > 0.05 * spectrum[1000]  # the other recording is in the view (1-Hz bins: 1 s of audio)


def test_build_views_writes_each_view_once_and_resumes(load_benchmark, tmp_path):
    views = load_benchmark("transfer_views")
    source, background, out = tmp_path / "src", tmp_path / "bg", tmp_path / "views"
    source.mkdir()
    background.mkdir()
    for i, f in enumerate((800.0, 1600.0, 2400.0)):
        sf.write(source / f"rec{i}.wav", _tone(f, seconds=0.5 + 0.25 * i), 32000)
    sf.write(background / "bg.wav", np.random.default_rng(1).normal(0, 0.05, 16000).astype(np.float32), 32000)
    (source / "broken.wav").write_bytes(b"RIFF not audio")
    summary = views.build_views(source, background, out, views=2, seed=3)
    assert summary["recordings"] == 4 and summary["written"] == 6 and len(summary["skipped"]) == 1 and "broken.wav" in summary["skipped"][0]
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"rec{i}_v{j}.flac" for i in range(3) for j in (1, 2)]
    for i in range(3):
        for j in (1, 2):
            data, sr = sf.read(out / f"rec{i}_v{j}.flac", dtype="float32")
            assert sr == 32000 and data.shape == (int((0.5 + 0.25 * i) * 32000),)  # a view keeps its recording's length
    first = (out / "rec0_v1.flac").read_bytes()
    (out / "rec1_v2.flac").unlink()  # a killed run: one view missing
    again = views.build_views(source, background, out, views=2, seed=3)
    assert again["written"] == 1 and again["kept"] == 5 and (out / "rec0_v1.flac").read_bytes() == first
    a, _ = sf.read(out / "rec1_v2.flac", dtype="float32")
    fresh = views.build_views(source, background, tmp_path / "fresh", views=2, seed=3)
    b, _ = sf.read(tmp_path / "fresh" / "rec1_v2.flac", dtype="float32")
    assert fresh["written"] == 6 and np.array_equal(a, b)  # the same seed draws the same view
