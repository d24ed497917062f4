"""The clip table: how a recording of a given length is cut into fixed-length windows.

One function owns the overlap and final-clip policy (as opensoundscape's ``generate_clip_times_df``); the
streaming predictor produces exactly the windows this table describes, and predictions keep its index.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ParameterError

__all__ = ["clip_times", "num_clips"]

FINAL_CLIP_POLICIES = ("pad", "drop")


def num_clips(num_samples: int, *, clip_samples: int, hop_samples: int, final_clip: str = "pad") -> int:
    """How many windows of ``clip_samples`` every ``hop_samples`` a recording of ``num_samples`` gives.

    ``final_clip="pad"`` keeps a last, incomplete window (zero padded) so every sample is covered;
    ``"drop"`` keeps only complete windows (but always at least one, padded, for a recording shorter than a clip).
    """
    if clip_samples <= 0 or hop_samples <= 0:
        raise ParameterError(f"clip_samples and hop_samples must be > 0, got {clip_samples}, {hop_samples}")
    if final_clip not in FINAL_CLIP_POLICIES:
        raise ParameterError(f"final_clip must be one of {FINAL_CLIP_POLICIES}, got {final_clip!r}")
    if num_samples <= 0:
        return 0
    if num_samples <= clip_samples:
        return 1
    if final_clip == "pad":  # the last window reaches the end; none starts past it (hop > clip leaves gaps)
        return min(1 + math.ceil((num_samples - clip_samples) / hop_samples), math.ceil(num_samples / hop_samples))
    return 1 + (num_samples - clip_samples) // hop_samples


def clip_times(duration: float, *, clip_duration: float = 5.0, hop: float | None = None, final_clip: str = "pad", sample_rate: int = 32_000) -> pd.DataFrame:
    """``start_time``/``end_time`` (s) of every window of a recording of ``duration`` seconds.

    Times are computed on the sample grid so they match the windows the predictor reads; the last padded
    window ends after ``duration``. ``hop`` defaults to ``clip_duration`` (no overlap).
    """
    hop = clip_duration if hop is None else hop
    if duration < 0 or clip_duration <= 0 or hop <= 0:
        raise ParameterError(f"need duration >= 0, clip_duration > 0, hop > 0; got {duration}, {clip_duration}, {hop}")
    clip_samples = int(round(clip_duration * sample_rate))
    hop_samples = int(round(hop * sample_rate))
    n = num_clips(int(round(duration * sample_rate)), clip_samples=clip_samples, hop_samples=hop_samples, final_clip=final_clip)
    starts = np.arange(n, dtype=np.int64) * hop_samples
    return pd.DataFrame({"start_time": starts / sample_rate, "end_time": (starts + clip_samples) / sample_rate})
