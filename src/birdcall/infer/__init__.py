"""Inference on recordings of any length, and writers for its results."""

from .long_recording import PredictResult as PredictResult
from .long_recording import iter_windows as iter_windows
from .long_recording import predict_file as predict_file
from .long_recording import predict_files as predict_files
from .scorer import BACKENDS as BACKENDS
from .scorer import Scorer as Scorer
from .scorer import TorchScorer as TorchScorer
from .scorer import load_scorer as load_scorer
from .writers import to_submission as to_submission
from .writers import write_submission as write_submission
