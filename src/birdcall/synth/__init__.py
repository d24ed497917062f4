"""Synthetic chorus data: fake species, their calls, realistic backgrounds and a BirdCLEF-layout data set.

Nothing is shipped: everything is generated from a seed. Start with :func:`make_dataset` (or ``birdcall synth``).
"""

from .calls import CALL_FAMILIES as CALL_FAMILIES
from .calls import SpeciesSpec as SpeciesSpec
from .calls import render_call as render_call
from .calls import species_bank as species_bank
from .dataset import AUDIO_FORMATS as AUDIO_FORMATS
from .dataset import LABEL_MIN_OVERLAP as LABEL_MIN_OVERLAP
from .dataset import WINDOW_DURATION as WINDOW_DURATION
from .dataset import SynthConfig as SynthConfig
from .dataset import SynthDataset as SynthDataset
from .dataset import make_dataset as make_dataset
from .dataset import window_labels as window_labels
from .noise import brown_noise as brown_noise
from .noise import distant_chorus as distant_chorus
from .noise import pink_noise as pink_noise
from .noise import rain_clicks as rain_clicks
from .noise import render_background as render_background
from .noise import wind_noise as wind_noise
