import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from birdcall.audio import num_clips
from birdcall.infer import iter_windows


def _split(signal, sizes):
    out, i = [], 0
    for size in sizes:
        out.append(signal[i : i + size])
        i += size
    out.append(signal[i:])
    return out


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(1, 3000),
    clip=st.integers(1, 500),
    hop=st.integers(1, 500),
    sizes=st.lists(st.integers(0, 700), max_size=8),
    final_clip=st.sampled_from(["pad", "drop"]),
)
def test_windows_match_the_clip_table_whatever_the_chunking(total, clip, hop, sizes, final_clip):
    signal = np.arange(1, total + 1, dtype=np.float32)  # nonzero everywhere: padding is visible
    windows = list(iter_windows(_split(signal, sizes), clip_samples=clip, hop_samples=hop, final_clip=final_clip))
    assert len(windows) == num_clips(total, clip_samples=clip, hop_samples=hop, final_clip=final_clip)
    for k, (start, window) in enumerate(windows):
        assert start == k * hop and window.shape == (clip,)
        expected = np.zeros(clip, dtype=np.float32)
        part = signal[start : start + clip]
        expected[: len(part)] = part
        np.testing.assert_array_equal(window, expected)


def test_empty_stream_gives_no_window():
    assert list(iter_windows([np.zeros(0, np.float32)], clip_samples=5, hop_samples=5)) == []
