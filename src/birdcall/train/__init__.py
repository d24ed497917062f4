"""Training: config, loop and model selection."""

from .config import TrainConfig as TrainConfig
from .loop import FitResult as FitResult
from .loop import evaluate as evaluate
from .loop import fit as fit
from .loop import train_one_epoch as train_one_epoch
