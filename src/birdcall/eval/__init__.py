"""Evaluation reports: metrics (from :mod:`birdcall.metrics`), figures, an error gallery to listen to, and one
HTML report. BirdCLEF solution/submission CSV files are read and scored by :mod:`birdcall.eval.submission`.

Gather the inputs with :func:`from_submission`, :func:`from_model` or :func:`from_run`, then
:func:`write_report` writes ``report.html``, ``metrics.json`` and ``per_species.csv``. :func:`write_search_page` writes
the page of a similarity search's hits (``birdcall search --html``) in the same style.
"""

from ..metrics import EvalMetrics as EvalMetrics
from ..metrics import best_f1 as best_f1
from ..metrics import cluster_order as cluster_order
from ..metrics import evaluate_arrays as evaluate_arrays
from ..metrics import expected_calibration_error as expected_calibration_error
from ..metrics import micro_roc_auc as micro_roc_auc
from ..metrics import primary_confusion as primary_confusion
from ..metrics import reliability_curve as reliability_curve
from ..metrics import species_table as species_table
from ..metrics import top1_accuracy as top1_accuracy
from .gallery import GalleryItem as GalleryItem
from .gallery import build_gallery as build_gallery
from .gallery import select_errors as select_errors
from .inputs import EvalInputs as EvalInputs
from .inputs import WindowRef as WindowRef
from .inputs import from_model as from_model
from .inputs import from_run as from_run
from .inputs import from_submission as from_submission
from .report import ReportResult as ReportResult
from .report import write_report as write_report
from .search_page import write_search_page as write_search_page
