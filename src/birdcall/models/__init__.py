"""Models: timm-backed classifiers taking raw waveform, their registry and their file format."""

from .cnn import BirdCNN as BirdCNN
from .cnn import ModelConfig as ModelConfig
from .io import load_model as load_model
from .io import read_model_info as read_model_info
from .io import save_model as save_model
from .zoo import create_model as create_model
from .zoo import list_models as list_models
