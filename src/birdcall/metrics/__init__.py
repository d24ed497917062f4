"""Metrics on arrays of multi-label species predictions, in one place.

* :mod:`~birdcall.metrics.scores`: the BirdCLEF headline metrics (padded cmAP, cmAP, macro ROC-AUC, per-species
  AP, `score_arrays`), used by training, cross-validation and the evaluation report;
* :mod:`~birdcall.metrics.diagnostics`: micro ROC-AUC, best F1 per species, top-1 accuracy, calibration, the
  primary-label confusion matrix, and `evaluate_arrays` (all of it as an `EvalMetrics`).

Reading and scoring BirdCLEF solution/submission CSV files is :mod:`birdcall.eval.submission`. Its names are still
reachable here (``from birdcall.metrics import score_submission``), with a `DeprecationWarning`.
"""

from __future__ import annotations

import importlib
import warnings

from .diagnostics import SPECIES_COLUMNS as SPECIES_COLUMNS
from .diagnostics import EvalMetrics as EvalMetrics
from .diagnostics import best_f1 as best_f1
from .diagnostics import cluster_order as cluster_order
from .diagnostics import evaluate_arrays as evaluate_arrays
from .diagnostics import expected_calibration_error as expected_calibration_error
from .diagnostics import micro_roc_auc as micro_roc_auc
from .diagnostics import primary_confusion as primary_confusion
from .diagnostics import reliability_curve as reliability_curve
from .diagnostics import row_normalise as row_normalise
from .diagnostics import species_table as species_table
from .diagnostics import top1_accuracy as top1_accuracy
from .scores import check_arrays as check_arrays
from .scores import cmap as cmap
from .scores import macro_roc_auc as macro_roc_auc
from .scores import padded_cmap as padded_cmap
from .scores import per_species_ap as per_species_ap
from .scores import score_arrays as score_arrays

# Moved to birdcall.eval.submission (issue 18); the README showed ``from birdcall.metrics import score_submission``.
_MOVED = {name: "birdcall.eval.submission" for name in ("ROW_ID", "read_solution", "read_submission", "score_files", "score_submission")}


def __getattr__(name: str):
    target = _MOVED.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"birdcall.metrics.{name} moved to {target}.{name}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(target), name)
