"""Feature front end: log-mel (numpy reference and torch), PCEN, MFCC and deltas, normalisation, cropping.

Numpy functions are the references (float64 inside, librosa-compatible); the torch modules compute the same
features batched on CPU or GPU. `FeatureExtractor` is what models put in front of their backbone.
"""

from .config import CHANNELS as CHANNELS
from .config import FeatureConfig as FeatureConfig
from .crop import CROP_MODES as CROP_MODES
from .crop import crop_or_pad as crop_or_pad
from .frontend import FeatureExtractor as FeatureExtractor
from .frontend import extract_features as extract_features
from .mel import LogMel as LogMel
from .mel import fft_frequencies as fft_frequencies
from .mel import hz_to_mel as hz_to_mel
from .mel import log_mel as log_mel
from .mel import mel_filterbank as mel_filterbank
from .mel import mel_frequencies as mel_frequencies
from .mel import mel_spectrogram as mel_spectrogram
from .mel import mel_to_hz as mel_to_hz
from .mel import power_to_db as power_to_db
from .mel import stft_power as stft_power
from .mfcc import MFCC as MFCC
from .mfcc import Delta as Delta
from .mfcc import dct_matrix as dct_matrix
from .mfcc import delta as delta
from .mfcc import delta_coefficients as delta_coefficients
from .mfcc import mfcc as mfcc
from .normalize import NORMALIZE_MODES as NORMALIZE_MODES
from .normalize import Normalize as Normalize
from .normalize import normalize as normalize
from .pcen import PCEN as PCEN
from .pcen import PCEN_INPUT_SCALE as PCEN_INPUT_SCALE
from .pcen import pcen as pcen
from .pcen import pcen_smoothing_coefficient as pcen_smoothing_coefficient
from .preemphasis import Preemphasis as Preemphasis
from .preemphasis import preemphasis as preemphasis
