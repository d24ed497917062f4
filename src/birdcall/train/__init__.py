"""Training: config, loop, cross-validation, losses, optimisers, EMA, resumable checkpoints, starting weights
(`init_weights`) and soft labels (pseudo-labels, distillation: :mod:`birdcall.train.soft_labels`)."""

from .config import TrainConfig as TrainConfig
from .cv import fit_folds as fit_folds
from .loop import FitResult as FitResult
from .loop import evaluate as evaluate
from .loop import fit as fit
from .loop import train_one_epoch as train_one_epoch
from .init import InitReport as InitReport
from .init import init_weights as init_weights
