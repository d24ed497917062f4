"""AddPinkNoise: add pink (1/f, -3.01 dB per octave) noise at a random SNR."""

from __future__ import annotations

from ..base import register_transform
from .add_color_noise import PINK_F_DECAY, AddColorNoise

__all__ = ["AddPinkNoise"]


@register_transform
class AddPinkNoise(AddColorNoise):
    """:class:`AddColorNoise` fixed at pink: power halves per octave, like wind, rain and distant traffic."""

    def __init__(self, min_snr_db: float = 5.0, max_snr_db: float = 40.0, p: float = 0.5):
        super().__init__(
            min_snr_db=min_snr_db, max_snr_db=max_snr_db, min_f_decay=PINK_F_DECAY, max_f_decay=PINK_F_DECAY, p=p
        )
