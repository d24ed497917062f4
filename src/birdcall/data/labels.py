"""`LabelSet`: the ordered list of species codes a model predicts, and conversions code <-> index."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError

__all__ = ["LabelSet"]


@dataclass(frozen=True)
class LabelSet:
    """Species codes in model output order, with optional scientific and common names.

    Example:
        >>> labels = LabelSet(("erirub", "turmer"))
        >>> labels.encode([["turmer"], ["erirub", "turmer"]]).tolist()
        [[0.0, 1.0], [1.0, 1.0]]
    """

    codes: tuple[str, ...]
    scientific_names: tuple[str, ...] = ()
    common_names: tuple[str, ...] = ()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = tuple(str(c) for c in self.codes)
        object.__setattr__(self, "codes", codes)
        if not codes:
            raise ParameterError("LabelSet: needs at least one species code")
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ParameterError(f"LabelSet: duplicate species codes {duplicates}")
        for name in ("scientific_names", "common_names"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if values and len(values) != len(codes):
                raise ParameterError(f"LabelSet: {name} has {len(values)} entries for {len(codes)} codes")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(codes)})

    def __len__(self) -> int:
        return len(self.codes)

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def index(self, code: str) -> int:
        try:
            return self._index[code]
        except KeyError:
            raise ParameterError(f"unknown species code {code!r} (model knows {len(self)} codes)") from None

    def encode(self, rows: Iterable[Iterable[str]], *, weights: Sequence[Iterable[float]] | None = None) -> np.ndarray:
        """Multi-hot targets ``(len(rows), len(self))`` float32; ``weights`` gives per-code target values."""
        rows = [list(r) for r in rows]
        out = np.zeros((len(rows), len(self)), dtype=np.float32)
        for i, codes in enumerate(rows):
            row_weights = list(weights[i]) if weights is not None else [1.0] * len(codes)
            for code, w in zip(codes, row_weights):
                j = self.index(code)
                out[i, j] = max(out[i, j], w)
        return out

    def to_dict(self) -> dict:
        return {"codes": list(self.codes), "scientific_names": list(self.scientific_names), "common_names": list(self.common_names)}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSet:
        """The inverse of `to_dict`, strict about what a file may hold: ``codes`` a list of non-empty strings,
        the optional name lists lists of strings (tuples also do; other keys are ignored).

        Raises:
            ParameterError: a malformed mapping, or duplicate codes (one line; model readers add the file name).
        """
        if not isinstance(data, dict):
            raise ParameterError(f"LabelSet: expected a mapping with 'codes', got {type(data).__name__}")
        if "codes" not in data:
            raise ParameterError("LabelSet: no 'codes' in the label mapping")
        values = {}
        for key in ("codes", "scientific_names", "common_names"):
            value = data.get(key, [])
            if not isinstance(value, (list, tuple)):
                raise ParameterError(f"LabelSet: {key} must be a list, got {type(value).__name__}")
            for i, item in enumerate(value):
                if not isinstance(item, str) or (key == "codes" and not item.strip()):
                    what = "non-empty strings" if key == "codes" else "strings"
                    raise ParameterError(f"LabelSet: {key} must be {what}, got {item!r} at position {i}")
            values[key] = tuple(value)
        return cls(values["codes"], values["scientific_names"], values["common_names"])
