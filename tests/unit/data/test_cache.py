import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import birdcall.data.cache as cache_module
from birdcall.audio import load, write_audio
from birdcall.data.cache import AudioCache, WarmStats
from birdcall.errors import AudioLoadError, ParameterError
from birdcall.testing.signals import chirp

SAMPLE_RATE = 16000


def _wav(path, seconds=1.0, low_hz=500.0, high_hz=4000.0, amplitude=0.8):
    y = chirp(start_hz=low_hz, end_hz=high_hz, duration=seconds, sample_rate=SAMPLE_RATE, amplitude=amplitude)
    return write_audio(path, y.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


@pytest.fixture
def calls(monkeypatch):
    """Count the decodes done by the cache."""
    paths = []

    def counting_load(path, **kwargs):
        paths.append(os.fspath(path))
        return load(path, **kwargs)

    monkeypatch.setattr(cache_module, "load", counting_load)
    return paths


@pytest.mark.parametrize("dtype, atol", [("float16", 2.0**-12), ("int16", 0.5 / 32767 + 1e-7), ("float32", 0.0)])
@pytest.mark.integration
def test_round_trip_within_dtype_tolerance(tmp_path, dtype, atol):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE, dtype=dtype)
    expected = load(path, sample_rate=SAMPLE_RATE)
    first, second = cache.get(path), cache.get(path)
    for y in (first, second):
        assert y.dtype == np.float32 and y.shape == expected.shape and y.flags.writeable
        assert np.max(np.abs(y - expected)) <= atol
    assert np.array_equal(first, second)  # the decode and the cached read give the same samples
    assert cache.memmap(path).dtype == np.dtype(dtype) and isinstance(cache.memmap(path), np.memmap)
    assert cache.entry_path(path).is_file() and cache.entry_path(path).is_relative_to(cache.root)


def test_second_get_does_not_decode(tmp_path, calls):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    cache.get(path)
    cache.get(path)
    AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE).get(path)  # another instance (another worker)
    assert calls == [str(path)]
    AudioCache(tmp_path / "cache", sample_rate=8000).get(path)  # another rate is another entry
    assert len(calls) == 2


def test_crop_reads_a_slice(tmp_path):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE, dtype="int16")
    full = cache.get(path)
    assert np.array_equal(cache.get(path, start=100, stop=1100), full[100:1100])
    assert np.array_equal(cache.get(path, start=-50), full[-50:])
    assert len(cache.memmap(path)) == len(full) == SAMPLE_RATE


def test_stale_entry_is_decoded_again_and_removed(tmp_path, calls):
    path = _wav(tmp_path / "a.wav", low_hz=500.0)
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE, dtype="float32")
    old_entry = cache.entry_path(path)
    old = cache.get(path)
    _wav(path, low_hz=2000.0)  # same size (float WAV of the same length), new contents
    new = cache.get(path)
    assert len(calls) == 2 and not np.array_equal(old, new)
    assert np.array_equal(new, load(path, sample_rate=SAMPLE_RATE))
    assert not old_entry.exists() and [p.name for p in old_entry.parent.iterdir()] == [cache.entry_path(path).name]


@pytest.mark.integration
def test_rewrite_in_place_with_new_mtime_is_stale(tmp_path, calls):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    cache.get(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    cache.get(path)
    assert len(calls) == 2


def test_damaged_entry_is_rebuilt(tmp_path, calls):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    expected = cache.get(path)
    entry = cache.entry_path(path)
    entry.write_bytes(entry.read_bytes()[:200])  # cut short, as by a crash without fsync
    assert np.array_equal(cache.get(path), expected)
    entry.write_bytes(b"")
    assert np.array_equal(cache.get(path), expected)
    assert len(calls) == 3 and cache.memmap(path).size == SAMPLE_RATE


def test_concurrent_writers_threads(tmp_path, monkeypatch):
    path = _wav(tmp_path / "a.wav")
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    barrier = threading.Barrier(4)

    def load_together(p, **kwargs):  # every thread decodes, then all of them write the same entry at once
        y = load(p, **kwargs)
        barrier.wait(timeout=10)
        return y

    monkeypatch.setattr(cache_module, "load", load_together)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: cache.get(path), range(4)))
    assert all(np.array_equal(r, results[0]) for r in results)
    assert [p.name for p in cache.entry_path(path).parent.iterdir()] == [cache.entry_path(path).name]  # no temp files
    assert np.array_equal(cache.get(path), results[0])


@pytest.mark.integration
def test_concurrent_writers_processes(tmp_path):
    path = _wav(tmp_path / "a.wav", seconds=4.0)
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    expected = cache.get(path)
    entry = cache.entry_path(path)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:  # two processes rewrite the entry over and over
        futures = [pool.submit(cache._fill, path, entry) for _ in range(40)]
        reads = 0
        while not all(f.done() for f in futures):  # meanwhile every read sees a complete entry
            assert np.array_equal(cache.get(path), expected)
            reads += 1
        for f in futures:
            f.result()
    assert reads > 0 and np.array_equal(cache.get(path), expected)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


@pytest.mark.parametrize("make", ["garbage", "missing", "folder", "empty"])
def test_bad_file_raises_naming_it(tmp_path, make):
    bad = tmp_path / "bad.ogg"
    if make == "garbage":
        bad.write_bytes(b"OggS not really" * 100)
    elif make == "folder":
        bad.mkdir()
    elif make == "empty":
        bad.write_bytes(b"")
    cache = AudioCache(tmp_path / "cache")
    with pytest.raises(AudioLoadError) as info:
        cache.get(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()  # nothing cached


def test_warm_fills_then_reads(tmp_path, calls):
    paths = [_wav(tmp_path / f"{i}.wav", low_hz=300.0 + 100 * i) for i in range(4)]
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    assert cache.warm(paths[:2]) == WarmStats(decoded=2, cached=0)
    assert cache.warm(paths, workers=2) == WarmStats(decoded=2, cached=2)
    n_decodes = len(calls)
    for p in paths:
        cache.get(p)
    assert len(calls) == n_decodes == 4


def test_warm_collects_bad_files(tmp_path):
    good = _wav(tmp_path / "good.wav")
    bad = [tmp_path / "missing.wav", tmp_path / "junk.wav"]
    bad[1].write_bytes(b"junk" * 100)
    cache = AudioCache(tmp_path / "cache", sample_rate=SAMPLE_RATE)
    stats = cache.warm([bad[0], good, bad[1]], skip_bad=True)
    assert stats.decoded == 1 and [p for p, _ in stats.failed] == [str(b) for b in bad]
    with pytest.raises(AudioLoadError, match="1 more bad file"):
        cache.warm([bad[0], good, bad[1]])
    with pytest.raises(ParameterError):
        cache.warm([good], workers=0)


def test_unwritable_cache_warns_and_decodes(tmp_path):
    path = _wav(tmp_path / "a.wav")
    (tmp_path / "not_a_dir").write_text("x")
    cache = AudioCache(tmp_path / "not_a_dir", sample_rate=SAMPLE_RATE)
    with pytest.warns(UserWarning, match="cannot write"):
        y = cache.get(path)
    assert np.max(np.abs(y - load(path, sample_rate=SAMPLE_RATE))) <= 2.0**-12


@pytest.mark.parametrize("kwargs", [{"dtype": "float64"}, {"dtype": "uint8"}, {"sample_rate": 0}, {"sample_rate": 16000.0}, {"sample_rate": True}])
def test_bad_parameters(tmp_path, kwargs):
    with pytest.raises(ParameterError):
        AudioCache(tmp_path, **kwargs)


def test_repr_and_pickle(tmp_path):
    import pickle

    cache = AudioCache(tmp_path, sample_rate=SAMPLE_RATE, dtype="int16")
    clone = pickle.loads(pickle.dumps(cache))
    assert repr(clone) == repr(cache) and "int16" in repr(cache) and clone.root == cache.root
