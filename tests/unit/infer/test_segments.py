"""score_segment: a file's windows first..stop-1, the rows score_file gives them (the work unit that spreads one long
recording over Ray actors, birdcall.infer.ray_engine)."""

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data.labels import LabelSet
from birdcall.errors import AudioLoadError, ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer.batching import score_file, score_segment, segment_rows
from birdcall.infer.long_recording import WindowSpec

RATE = 8000


class WindowStats:
    """Each window's mean, first and last sample, and peak: any change of grid or samples shows."""

    labels = LabelSet(("mean", "first", "last", "peak"))
    features = FeatureConfig(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=16, fmin=0.0, fmax=4000.0, clip_duration=1.0)

    def __call__(self, windows):
        return np.stack([windows.mean(axis=1), windows[:, 0], windows[:, -1], np.abs(windows).max(axis=1)], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """37.3 s at 11025 Hz (resampled to 8 kHz while decoding, so samples depend on the whole stream before them)."""
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    return write_audio(path, (rng.random(int(37.3 * 11025)) - 0.5).astype(np.float32), 11025, subtype="FLOAT")


SPECS = {
    "plain": WindowSpec(RATE, 1.0, chunk_duration=0.7),
    "hop": WindowSpec(RATE, 1.0, hop=0.3, chunk_duration=2.9),
    "tta": WindowSpec(RATE, 1.0, hop=0.45, tta_shifts=(0.0, 0.25, -0.4), chunk_duration=1.3),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_consecutive_segments_concatenate_to_the_whole_file(long_file, name):
    spec = SPECS[name]
    whole = score_file(WindowStats(), long_file, spec, batch_size=5)
    n = len(whole)
    for cuts in ([7], [1, 2, 3, n - 2], [11, 29, 30, n - 1], [n]):  # awkward boundaries: mid-block, adjacent, last window
        bounds = [0, *cuts, None]
        parts = [score_segment(WindowStats(), long_file, spec, a, b, batch_size=5) for a, b in zip(bounds, bounds[1:])]
        pd.testing.assert_frame_equal(pd.concat(parts), whole, check_exact=True)
    assert score_segment(WindowStats(), long_file, spec, n + 3, None).empty  # past the end: no rows


def test_segment_rows_decode_only_what_they_need(long_file):
    spec = SPECS["plain"]
    early = segment_rows(WindowStats(), long_file, spec, 0, 5, width=4)
    last = segment_rows(WindowStats(), long_file, spec, 30, None, width=4, prefetch=True)
    assert len(early.starts) == 5 and early.duration < 7.0  # stopped a chunk or so after window 4
    assert last.starts[0] == 30 * RATE and last.duration == pytest.approx(37.3, abs=1e-3)  # the whole file


def test_bad_segments_and_files(tmp_path, long_file):
    with pytest.raises(ParameterError):
        score_segment(WindowStats(), long_file, SPECS["plain"], 5, 3)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioLoadError):
        score_segment(WindowStats(), bad, SPECS["plain"], 0, 2)
