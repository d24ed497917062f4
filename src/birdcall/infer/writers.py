"""Writers for prediction tables: the BirdCLEF submission CSV (detection tables come with ``analyze``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_to_csv
from ..types import Pathlike

__all__ = ["to_submission", "write_submission"]


def to_submission(scores: pd.DataFrame) -> pd.DataFrame:
    """BirdCLEF submission: ``row_id`` = ``<file stem>_<end second>`` then one column per species.

    ``scores`` is indexed by (file, start_time, end_time) as :func:`predict_file` returns it.
    """
    files = scores.index.get_level_values("file")
    ends = scores.index.get_level_values("end_time")
    row_id = [f"{Path(f).stem}_{int(round(e))}" for f, e in zip(files, ends)]
    out = pd.DataFrame(np.asarray(scores.values, dtype=np.float32), columns=scores.columns)
    out.insert(0, "row_id", row_id)
    return out


def write_submission(scores: pd.DataFrame, path: Pathlike) -> Path:
    """Write :func:`to_submission` of ``scores`` atomically."""
    return atomic_to_csv(to_submission(scores), path, float_format="%.6g")
