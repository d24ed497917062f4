import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.audio import clip_times, num_clips
from birdcall.errors import ParameterError


def test_clip_times_on_the_birdclef_grid():
    table = clip_times(12.0, clip_duration=5.0)
    assert table["start_time"].tolist() == [0.0, 5.0, 10.0]
    assert table["end_time"].tolist() == [5.0, 10.0, 15.0]  # last window padded past the end
    assert clip_times(12.0, clip_duration=5.0, final_clip="drop")["end_time"].tolist() == [5.0, 10.0]
    assert clip_times(3.0, clip_duration=5.0, final_clip="drop")["end_time"].tolist() == [5.0]
    assert len(clip_times(0.0)) == 0


@settings(max_examples=200, deadline=None)
@given(num_samples=st.integers(1, 10_000), clip=st.integers(1, 700), hop=st.integers(1, 700))
def test_padded_clips_cover_every_sample_exactly_once_per_hop(num_samples, clip, hop):
    n = num_clips(num_samples, clip_samples=clip, hop_samples=hop, final_clip="pad")
    starts = np.arange(n) * hop
    assert starts[-1] < num_samples  # no window starts past the end
    if hop <= clip:
        assert starts[-1] + clip >= num_samples  # the last window reaches the end: every sample covered
    if n > 1:
        assert starts[-2] + clip < num_samples  # and one window fewer would not
    drop = num_clips(num_samples, clip_samples=clip, hop_samples=hop, final_clip="drop")
    assert drop <= n and (drop == 1 or (drop - 1) * hop + clip <= num_samples)


def test_bad_parameters():
    with pytest.raises(ParameterError):
        num_clips(10, clip_samples=0, hop_samples=1)
    with pytest.raises(ParameterError):
        num_clips(10, clip_samples=5, hop_samples=5, final_clip="extend")
