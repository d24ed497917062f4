"""The model front end: waveform -> stacked, normalised feature channels, as `FeatureConfig` describes.

Pipeline: pre-emphasis (if ``config.preemphasis > 0``) -> one STFT -> mel -> dB or PCEN -> the channels named
in ``config.channels`` -> per-example, per-channel normalisation. Channels:

- ``"logmel"``: the scaled mel spectrogram: dB (``config.scale == "db"``) or PCEN (``"pcen"``; PCEN takes the
  *magnitude* mel spectrogram times 2**31 whatever ``config.power`` is, as librosa's docs recommend).
- ``"logmel_delta"``, ``"logmel_delta2"``: its 1st and 2nd order deltas (``config.delta_width`` frames).
- ``"mfcc"``, ``"mfcc_delta"``, ``"mfcc_delta2"``: ``config.n_mfcc`` MFCCs of the dB mel spectrogram (also
  under PCEN) and their deltas. Each is normalised over its ``n_mfcc`` rows, then zero-padded to ``n_mels``
  rows so it stacks with the mel channels (the padding stays exactly zero).
- ``"gtcc"``, ``"gtcc_delta"``, ``"gtcc_delta2"``: ``config.n_gtcc`` gammatone cepstral coefficients, the same
  DCT of the dB spectrogram of ``config.n_gammatone`` ERB-spaced gammatone filters (`birdcall.features.gammatone`,
  applied to ``|STFT| ** config.power`` like the mel filters, ``top_db`` as for the mel bands, also under PCEN),
  and their deltas; normalised over their rows and zero-padded to ``n_mels`` rows as the MFCC channels are.
- ``"freqpos"``: the frequency coordinate, ``linspace(-1, 1, n_mels)`` down the mel rows, the same in every
  frame and never normalised (CoordConv: a CNN is translation invariant, but a species is known by its pitch).

`extract_features` is the numpy reference (float64 inside); `FeatureExtractor` is the batched torch module
that models put in front of their backbone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from .config import FeatureConfig
from .gammatone import Gammatone
from .mel import LogMel, _gammatone_from_config, _mel_spectrogram64, power_to_db, stft_power
from .mfcc import MFCC, Delta, delta, mfcc
from .normalize import Normalize, normalize
from .pcen import PCEN, PCEN_INPUT_SCALE, pcen
from .preemphasis import Preemphasis, _preemphasis64

__all__ = ["extract_features", "FeatureExtractor"]


def _check_frames(config: FeatureConfig, num_samples: int) -> None:
    if any(c.endswith(("delta", "delta2")) for c in config.channels) and config.num_frames(num_samples) < config.delta_width:
        raise ParameterError(
            f"delta channels need at least delta_width={config.delta_width} frames; {num_samples} samples give "
            f"{config.num_frames(num_samples)} (hop_length={config.hop_length})"
        )


def extract_features(*, y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Numpy reference of `FeatureExtractor`.

    Args:
        y: waveform at ``config.sample_rate``, ``(..., num_samples)``.
        config: the front end.

    Returns:
        ``(..., num_channels, n_mels, n_frames)`` float32 array, ``n_frames = config.num_frames(num_samples)``.

    Raises:
        ParameterError: too few samples (pre-emphasis needs 2, delta channels ``delta_width`` frames).
    """
    y = np.asarray(y)
    if y.ndim < 1 or y.shape[-1] < 2:
        raise ParameterError(f"extract_features: expected (..., num_samples) with num_samples >= 2, got {y.shape}")
    _check_frames(config, y.shape[-1])
    x = _preemphasis64(y, config.preemphasis) if config.preemphasis > 0 else y.astype(np.float64)
    needs_db = config.scale == "db" or any(c.startswith("mfcc") for c in config.channels)
    db = power_to_db(_mel_spectrogram64(x, config, config.power), top_db=config.top_db) if needs_db else None
    if config.scale == "db":
        base = db
    else:
        magnitude = _mel_spectrogram64(x, config, 1.0)
        base = pcen(magnitude * PCEN_INPUT_SCALE, sample_rate=config.sample_rate, hop_length=config.hop_length)
    sources = {"logmel": base}
    if any(c.startswith("mfcc") for c in config.channels):
        sources["mfcc"] = mfcc(S=db, n_mfcc=config.n_mfcc)
    if any(c.startswith("gtcc") for c in config.channels):
        spec = stft_power(y=x, n_fft=config.n_fft, hop_length=config.hop_length, power=config.power)
        gammatone_db = power_to_db(np.matmul(_gammatone_from_config(config), spec), top_db=config.top_db)
        sources["gtcc"] = mfcc(S=gammatone_db, n_mfcc=config.n_gtcc)
    channels = []
    for name in config.channels:
        if name == "freqpos":
            ramp = np.linspace(-1.0, 1.0, config.n_mels)[:, None]
            channels.append(np.broadcast_to(ramp, base.shape))
            continue
        source, _, suffix = name.partition("_")
        feat = sources[source]
        if suffix:
            feat = delta(feat, width=config.delta_width, order=2 if suffix == "delta2" else 1)
        feat = normalize(feat, mode=config.normalize)
        pad = config.n_mels - feat.shape[-2]
        if pad:
            feat = np.concatenate([feat, np.zeros(feat.shape[:-2] + (pad, feat.shape[-1]))], axis=-2)
        channels.append(feat)
    return np.stack(channels, axis=-3).astype(np.float32)


class FeatureExtractor(nn.Module):
    """Waveforms to model input: ``(batch, num_samples)`` -> ``(batch, num_channels, n_mels, n_frames)``.

    Batched (no loop over the batch) and deterministic; the only Python branches depend on the config or
    on static shapes. ``torch.stft(return_complex=True)`` does not export to ONNX as is:
    :func:`birdcall.export.export_onnx` swaps in the ONNX STFT operator (opset >= 17) or a DFT convolution,
    with the same values. The window, filter bank, DCT and smoothing/delta kernels are registered buffers.

    Args:
        config: the front end; saved with every checkpoint.
        dtype: dtype of the buffers and the computation.

    Example:
        >>> fx = FeatureExtractor(FeatureConfig(channels=("logmel", "logmel_delta")))
        >>> fx(torch.zeros(4, 160_000)).shape
        torch.Size([4, 2, 128, 313])
    """

    config_type = FeatureConfig

    def __init__(self, config: FeatureConfig | None = None, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = c = FeatureConfig() if config is None else config
        self.preemphasis = Preemphasis(c.preemphasis) if c.preemphasis > 0 else None
        self.logmel = LogMel(c, dtype=dtype)
        self.pcen = PCEN(sample_rate=c.sample_rate, hop_length=c.hop_length, dtype=dtype) if c.scale == "pcen" else None
        wants_mfcc = any(ch.startswith("mfcc") for ch in c.channels)
        self.mfcc = MFCC(c.n_mfcc, c.n_mels, dtype=dtype) if wants_mfcc else None
        self.gammatone = self.gtcc = None
        if any(ch.startswith("gtcc") for ch in c.channels):
            fmin, fmax = c.gammatone_band
            self.gammatone = Gammatone(
                sample_rate=c.sample_rate, n_fft=c.n_fft, n_filters=c.n_gammatone, fmin=fmin, fmax=fmax,
                bins=self.logmel._bins, power=c.power, dtype=dtype,
            )  # fmt: skip
            self.gtcc = MFCC(c.n_gtcc, c.n_gammatone, dtype=dtype)
        self.delta = Delta(c.delta_width, 1, dtype=dtype)
        self.delta2 = Delta(c.delta_width, 2, dtype=dtype)
        self.normalize = Normalize(c.normalize)
        self.register_buffer("freqpos", torch.linspace(-1.0, 1.0, c.n_mels, dtype=dtype)[:, None], persistent=False)

    @property
    def num_channels(self) -> int:
        return self.config.num_channels

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Features of a batch of waveforms.

        Args:
            waveform: ``(batch, num_samples)`` at ``config.sample_rate``, ``num_samples >= 2``.

        Returns:
            ``(batch, num_channels, n_mels, n_frames)`` tensor in the module's dtype (float32 by default),
            ``n_frames = config.num_frames(num_samples)``.

        Raises:
            ParameterError: wrong shape, or too few frames for the delta channels.
        """
        c = self.config
        x = self.logmel.check_waveform(waveform)
        if x.shape[-1] < 2:
            raise ParameterError(f"FeatureExtractor: need at least 2 samples, got {tuple(x.shape)}")
        _check_frames(c, int(x.shape[-1]))
        if self.preemphasis is not None:
            x = self.preemphasis(x)
        spec = self.logmel.power_frames(x)  # (batch, n_frames, n_used_bins)
        db = self.logmel.to_db(self.logmel.mel(spec)) if (self.pcen is None or self.mfcc is not None) else None
        if self.pcen is None:
            base = db
        else:
            base = self.pcen(self.logmel.mel(spec, power=1.0) * PCEN_INPUT_SCALE)
        sources = {"logmel": base}
        if self.mfcc is not None:
            sources["mfcc"] = self.mfcc(db)
        if self.gammatone is not None:
            sources["gtcc"] = self.gtcc(self.logmel.to_db(self.gammatone(spec)))
        channels = []
        for name in c.channels:
            if name == "freqpos":
                channels.append(self.freqpos.expand_as(base))
                continue
            source, _, suffix = name.partition("_")
            feat = sources[source]
            if suffix == "delta":
                feat = self.delta(feat)
            elif suffix == "delta2":
                feat = self.delta2(feat)
            feat = self.normalize(feat)
            if feat.shape[-2] < c.n_mels:  # mfcc and gtcc channels
                feat = F.pad(feat, (0, 0, 0, c.n_mels - feat.shape[-2]))
            channels.append(feat)
        return torch.stack(channels, dim=1)
