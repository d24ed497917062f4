"""Feature front end: log-mel (numpy reference and torch), PCEN, MFCC, GTCC (gammatone) and deltas, normalisation, cropping.

Numpy functions are the references (float64 inside, librosa-compatible); the torch modules compute the same
features batched on CPU or GPU. `FeatureExtractor` is what models put in front of their backbone.

`FeatureConfig` and cropping are imported at once; every other name is imported on first use (their modules
import torch), so code that only needs the config, such as the ONNX Runtime and OpenVINO scorers, runs
without torch.
"""

from .._lazy import install
from .config import CHANNELS as CHANNELS
from .config import FeatureConfig as FeatureConfig
from .crop import CROP_MODES as CROP_MODES
from .crop import PAD_MODES as PAD_MODES
from .crop import crop_or_pad as crop_or_pad

_LAZY = {
    "FeatureExtractor": "frontend",
    "extract_features": "frontend",
    "EAR_Q": "gammatone",
    "MIN_BW": "gammatone",
    "Gammatone": "gammatone",
    "erb_bandwidth": "gammatone",
    "erb_centre_frequencies": "gammatone",
    "erb_number": "gammatone",
    "gammatone_filterbank": "gammatone",
    "LogMel": "mel",
    "fft_frequencies": "mel",
    "hz_to_mel": "mel",
    "log_mel": "mel",
    "mel_filterbank": "mel",
    "mel_frequencies": "mel",
    "mel_spectrogram": "mel",
    "mel_to_hz": "mel",
    "power_to_db": "mel",
    "stft_power": "mel",
    "MFCC": "mfcc",
    "Delta": "mfcc",
    "dct_matrix": "mfcc",
    "delta": "mfcc",
    "delta_coefficients": "mfcc",
    "mfcc": "mfcc",
    "NORMALIZE_MODES": "normalize",
    "Normalize": "normalize",
    "normalize": "normalize",
    "PCEN": "pcen",
    "PCEN_INPUT_SCALE": "pcen",
    "pcen": "pcen",
    "pcen_smoothing_coefficient": "pcen",
    "PowerSpectrum": "stft",
    "hann_window": "stft",
    "Preemphasis": "preemphasis",
    "preemphasis": "preemphasis",
}
__all__ = ["CHANNELS", "CROP_MODES", "PAD_MODES", "FeatureConfig", "crop_or_pad"] + list(_LAZY)
install(__name__, _LAZY)
