"""A deterministic stand-in for BirdNET, so code built on BirdNET features is tested without the optional extra.

:class:`StandInBirdNet` has :class:`~birdcall.birdnet.BirdNetModel`'s call signature and attributes and is plain
numpy: each 3-s segment is summarised by the mean and RMS of its 8 consecutive blocks, and the embeddings and
logits are fixed random projections of that summary. The outputs therefore depend on where a segment starts
and what it holds (a test catches a shifted or resampled-wrong segment), and equal inputs give equal outputs.
"""

from __future__ import annotations

import numpy as np

from ..birdnet.model import BIRDNET_SAMPLE_RATE, BIRDNET_SEGMENT_SAMPLES, species_index
from ..errors import ParameterError

__all__ = ["StandInBirdNet"]

_BLOCKS = 8


class StandInBirdNet:
    """``model(segments (n, segment_samples)) -> (embeddings (n, embedding_dim), logits (n, num_classes))``.

    Args:
        embedding_dim: embedding width (BirdNET: 1024).
        num_classes: number of classes (BirdNET: 6522); labels are ``("Avis standin<i>", "Stand-in bird <i>")``.
        seed: seed of the projections.
        sample_rate: the rate segments are at.
        segment_samples: segment length.
    """

    name = "BirdNET stand-in (birdcall.testing.birdnet)"
    version = "0"
    license = "Apache-2.0"

    def __init__(self, *, embedding_dim: int = 1024, num_classes: int = 6522, seed: int = 0,
                 sample_rate: int = BIRDNET_SAMPLE_RATE, segment_samples: int = BIRDNET_SEGMENT_SAMPLES):
        rng = np.random.default_rng(seed)
        self.embedding_dim, self.num_classes = int(embedding_dim), int(num_classes)
        self.sample_rate, self.segment_samples = int(sample_rate), int(segment_samples)
        self._to_embedding = rng.standard_normal((2 * _BLOCKS, self.embedding_dim)) * 4.0
        self._to_logits = rng.standard_normal((2 * _BLOCKS, self.num_classes)) * 4.0
        self.labels = tuple((f"Avis standin{i}", f"Stand-in bird {i}") for i in range(self.num_classes))
        self.digest = f"stand-in:{self.embedding_dim}:{self.num_classes}:{seed}"
        self.calls = 0  # model calls so far (tests check batching)

    def summary(self, segments: np.ndarray) -> np.ndarray:
        """``(n, 16)``: mean and RMS of each of 8 consecutive blocks of each segment (float64)."""
        blocks = np.asarray(segments, dtype=np.float64).reshape(len(segments), _BLOCKS, -1)
        return np.concatenate([blocks.mean(axis=2), np.sqrt((blocks**2).mean(axis=2))], axis=1)

    def __call__(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(segments, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.segment_samples or self.segment_samples % _BLOCKS:
            raise ParameterError(f"stand-in BirdNET takes (n, {self.segment_samples}) segments, got shape {x.shape}")
        self.calls += 1
        stats = self.summary(x)
        embeddings = np.maximum(np.tanh(stats @ self._to_embedding), 0.0)  # BirdNET's embeddings are >= 0 too
        return embeddings.astype(np.float32), (stats @ self._to_logits).astype(np.float32)

    def species_index(self, scientific_names) -> np.ndarray:
        return species_index(self.labels, scientific_names)
