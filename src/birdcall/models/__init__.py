"""Models: timm-backed CNN, SED and CRNN families (on CNN or audio-transformer backbones) and heads on frozen BirdNET features, all taking raw waveform, their registry and their file format.

A CNN returns clip logits ``(B, C)``; SED and CRNN models return ``{"clipwise": (B, C), "framewise": (B, T', C)}``
logits. ``clip_logits(model(x))`` gives the clip logits of either, for losses and scoring.
"""

from .cnn import BirdCNN as BirdCNN
from .cnn import ModelConfig as ModelConfig
from .crnn import BirdCRNN as BirdCRNN
from .heads import clip_logits as clip_logits
from .heads import combine_clip_logits as combine_clip_logits
from .io import load_model as load_model
from .io import read_model_info as read_model_info
from .io import save_model as save_model
from .probe import BirdNetProbe as BirdNetProbe
from .sed import BirdSED as BirdSED
from .zoo import BIRDNET_FAMILIES as BIRDNET_FAMILIES
from .zoo import create_model as create_model
from .zoo import list_models as list_models
from .zoo import model_config as model_config
