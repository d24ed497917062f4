"""`FeatureConfig`: the one frozen description of the front end.

It is saved inside every checkpoint and exported model, so inference can never compute different features
from training. The defaults are the BirdCLEF seed recipe: 32 kHz, n_fft 2048, hop 512, 128 mel bands from
50 Hz to 14 kHz, power spectrogram in dB with no ``top_db`` clipping, 5-s clips.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_choice, check_fields, check_number
from ..errors import ParameterError
from .crop import PAD_MODES

__all__ = ["FeatureConfig", "CHANNELS"]

# Channels a model input can stack, in this order of names. "mfcc*" channels hold n_mfcc coefficients and "gtcc*"
# channels n_gtcc gammatone cepstral coefficients (from n_gammatone ERB-spaced filters); both are zero-padded to
# n_mels rows so they stack with the mel channels. "freqpos" is a constant ramp from -1 (lowest
# mel band) to 1 (highest), a CoordConv-style channel that tells a translation-invariant CNN where in frequency it is.
CHANNELS = (
    "logmel", "logmel_delta", "logmel_delta2", "mfcc", "mfcc_delta", "mfcc_delta2", "gtcc", "gtcc_delta", "gtcc_delta2",
    "freqpos",
)  # fmt: skip


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 32_000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 50.0
    fmax: float = 14_000.0
    power: float = 2.0
    scale: str = "db"  # "db" (10*log10 with amin 1e-10, ref 1.0) or "pcen"
    top_db: float | None = None
    preemphasis: float = 0.0  # 0 disables; the seed recipe's value is 0.97
    channels: tuple[str, ...] = ("logmel",)
    n_mfcc: int = 20
    # GTCC: n_gtcc DCT coefficients of the dB gammatone spectrogram of n_gammatone filters, ERB-spaced from
    # gammatone_fmin up to gammatone_fmax (null: fmin and fmax); used only by the "gtcc*" channels
    n_gammatone: int = 64
    gammatone_fmin: float | None = None
    gammatone_fmax: float | None = None
    n_gtcc: int = 20
    delta_width: int = 9
    normalize: str = "standardize"  # per sample and channel: "standardize", "minmax" or "none"
    clip_duration: float = 5.0
    # A clip shorter than clip_duration is "zero"-padded or "wrap"ped (tiled; see crop_or_pad) in training,
    # validation and clip evaluation. Long-recording inference always zero-pads its final partial window.
    pad: str = "zero"

    def __post_init__(self) -> None:
        check_fields(self)  # types and finite numbers
        for key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            check_number(self, key, ge=1)
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError(
                f"FeatureConfig.fmin/fmax: need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                f"sample_rate={self.sample_rate}"
            )
        check_number(self, "power", gt=0)
        check_number(self, "top_db", gt=0, none_ok=True)
        check_choice(self, "scale", ("db", "pcen"))
        check_choice(self, "normalize", ("standardize", "minmax", "none"))
        check_number(self, "preemphasis", ge=0, lt=1)
        channels = self.channels
        bad = [c for c in channels if c not in CHANNELS]
        if not channels or bad or len(set(channels)) != len(channels):
            raise ParameterError(f"FeatureConfig.channels must be distinct names from {CHANNELS}, got {channels}")
        check_number(self, "n_mfcc", ge=1)
        if any(c.startswith("mfcc") for c in channels) and not self.n_mfcc <= self.n_mels:
            raise ParameterError(f"FeatureConfig.n_mfcc must be in 1..n_mels, got {self.n_mfcc}")
        for key in ("n_gammatone", "n_gtcc"):
            check_number(self, key, ge=1)
        check_number(self, "gammatone_fmin", ge=0, none_ok=True)
        check_number(self, "gammatone_fmax", gt=0, le=self.sample_rate / 2, none_ok=True, note=" (sample_rate/2)")
        low, high = self.gammatone_band
        if not low < high:
            raise ParameterError(f"FeatureConfig.gammatone_fmin must be below gammatone_fmax, got {low} >= {high}")
        if any(c.startswith("gtcc") for c in channels) and not self.n_gtcc <= min(self.n_gammatone, self.n_mels):
            raise ParameterError(
                f"FeatureConfig.n_gtcc must be in 1..min(n_gammatone, n_mels) = {min(self.n_gammatone, self.n_mels)}, got {self.n_gtcc}"
            )
        if self.delta_width < 3 or self.delta_width % 2 == 0:
            raise ParameterError(f"FeatureConfig.delta_width must be odd and >= 3, got {self.delta_width}")
        check_choice(self, "pad", PAD_MODES)
        check_number(self, "clip_duration", gt=0)
        if self.clip_samples < 1:
            raise ParameterError(f"FeatureConfig.clip_duration is shorter than one sample, got {self.clip_duration}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_duration * self.sample_rate))

    @property
    def gammatone_band(self) -> tuple[float, float]:
        """``(fmin, fmax)`` of the gammatone filters: their own band, else the mel band."""
        low = self.fmin if self.gammatone_fmin is None else self.gammatone_fmin
        high = self.fmax if self.gammatone_fmax is None else self.gammatone_fmax
        return low, high

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT (librosa's ``center=True``) of ``num_samples`` samples."""
        return 1 + num_samples // self.hop_length
