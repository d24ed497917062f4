"""Training: config, loop, cross-validation, losses, optimisers, EMA and resumable checkpoints."""

from .config import TrainConfig as TrainConfig
from .cv import fit_folds as fit_folds
from .loop import FitResult as FitResult
from .loop import evaluate as evaluate
from .loop import fit as fit
from .loop import train_one_epoch as train_one_epoch
