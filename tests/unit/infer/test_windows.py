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


def test_wrap_tiles_a_file_shorter_than_one_window_at_every_shift():
    import pytest

    from birdcall.errors import ParameterError
    from birdcall.infer.long_recording import iter_window_blocks

    y = np.arange(1, 8, dtype=np.float32)  # 7 samples, window 10
    chunks = [y[:3], y[3:]]
    (block,) = iter_window_blocks(iter(chunks), clip_samples=10, hop_samples=10, shift_samples=(0, 4, -2), pad="wrap")
    windows = block.windows(clip_samples=10, shift_samples=(0, 4, -2))[0]
    tiled = y[np.arange(20) % 7]
    np.testing.assert_array_equal(windows[0], tiled[:10])  # 1..7, 1, 2, 3
    np.testing.assert_array_equal(windows[1], tiled[4:14])
    np.testing.assert_array_equal(windows[2], np.concatenate([[0, 0], tiled[:8]]))  # before the start stays silent
    (zero,) = iter_window_blocks(iter(chunks), clip_samples=10, hop_samples=10, pad="zero")
    np.testing.assert_array_equal(zero.windows(clip_samples=10)[0, 0], np.concatenate([y, [0, 0, 0]]))
    with pytest.raises(ParameterError, match="pad"):
        list(iter_window_blocks(iter(chunks), clip_samples=10, hop_samples=10, pad="edge"))


def test_wrap_leaves_the_final_partial_window_of_a_longer_file_zero_padded():
    from birdcall.infer.long_recording import iter_window_blocks

    y = np.arange(1, 16, dtype=np.float32)  # 15 samples: one full window of 10, then 5 samples
    blocks = list(iter_window_blocks(iter([y]), clip_samples=10, hop_samples=10, pad="wrap"))
    windows = np.concatenate([b.windows(clip_samples=10)[:, 0] for b in blocks])
    assert len(windows) == 2
    np.testing.assert_array_equal(windows[1], np.concatenate([y[10:], np.zeros(5)]))
