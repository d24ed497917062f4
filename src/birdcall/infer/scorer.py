"""Scorers: anything that turns a batch of raw waveform windows into species probabilities; and embedders,
which turn them into embedding vectors.

A scorer is called as ``scorer(windows)`` with ``(batch, num_samples)`` float32 audio at
``scorer.features.sample_rate`` and returns ``(batch, len(scorer.labels))`` float32 probabilities.
:func:`load_scorer` opens any model a user can point at (``--model``) with the chosen backend.

An :class:`Embedder` is called the same way at ``embedder.sample_rate`` and returns ``(batch, embedder.dim)``
float32 vectors; ``embedder.settings`` (JSON) says what made them. :func:`load_embedder` opens a birdcall
checkpoint (its penultimate layer, :class:`TorchEmbedder`) or BirdNET (:class:`BirdNetEmbedder`).

(Just over 500 lines: one class per backend, each small; opening a model by what the user names is
:mod:`birdcall.infer.models`'s.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .._validate import is_int
from ..data.labels import LabelSet
from ..errors import CheckpointError, ParameterError
from ..features import FeatureConfig
from ..fileio import hash_files
from ..types import Pathlike

__all__ = [
    "BACKENDS",
    "BIRDNET",
    "BirdNetEmbedder",
    "Embedder",
    "OnnxScorer",
    "OpenVinoScorer",
    "Scorer",
    "TorchEmbedder",
    "TorchScorer",
    "load_embedder",
    "load_scorer",
]

BACKENDS = ("torch", "onnx", "openvino")


@runtime_checkable
class Scorer(Protocol):
    labels: LabelSet
    features: FeatureConfig

    def __call__(self, windows: np.ndarray) -> np.ndarray: ...


class TorchScorer:
    """A birdcall torch model as a :class:`Scorer` (sigmoid probabilities, no gradients)."""

    def __init__(self, model, *, labels: LabelSet | None = None, threads: int | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.labels = labels
        self.features: FeatureConfig = model.feature_config
        if threads:
            torch.set_num_threads(threads)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        from ..models import clip_logits

        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            return self.torch.sigmoid(clip_logits(self.model(x))).float().numpy()


def _check_threads(threads: int | None) -> None:
    if threads is not None and (not is_int(threads) or threads < 0):
        raise ParameterError(f"threads must be a non-negative integer or None, got {threads!r}")


class _ExportedScorer:
    """What the scorers of exported graphs share: input checks (static window length, dynamic batch) and,
    with ``frontend="host"``, the host STFT pipelined with the graph (:mod:`birdcall.export.host`)."""

    labels: LabelSet
    features: FeatureConfig
    frontend: str = "graph"  # "graph": the whole exported graph; "host": host STFT + the graph after it
    # Rows per graph call on the host path: the STFT of the next chunk runs in a helper thread while the graph
    # runs this one (pocketfft, numpy and both runtimes release the GIL). For ONNX Runtime; 4, 8 and 16 were
    # within noise of each other end to end (efficientnet_b0, 2 cores). OpenVINO's scorer sets its own.
    host_chunk = 8
    _stft = None
    _pool = None
    _ring = None

    def _use_frontend(self, frontend: str, info: dict) -> None:
        """Resolve ``frontend`` for this file (`birdcall.export.host.resolve_frontend`); set up the host STFT."""
        from ..export.host import host_power_spectrum, resolve_frontend

        self.frontend = resolve_frontend(frontend, info, self.path)
        if self.frontend == "host":
            from concurrent.futures import ThreadPoolExecutor

            self._stft = host_power_spectrum(self.features, info)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="birdcall-stft")

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """``(batch, clip_samples)`` float32 windows -> ``(batch, len(labels))`` float32 probabilities."""
        x = self._windows(windows)
        if x.shape[0] == 0:
            return self._empty()
        if self._stft is None:
            return self._run(x)
        return self._run_each(self._powers(x))

    def _powers(self, x: np.ndarray) -> Iterator[np.ndarray]:
        """The host STFT of ``x``, ``host_chunk`` rows at a time, computed one chunk ahead in the helper thread.

        The chunks are written into two reused buffers: a yielded chunk is valid until the next one is asked
        for (both runtimes copy or finish with their input before returning).
        """
        shape = self._stft.output_shape(self.host_chunk, x.shape[1])
        if self._ring is None or self._ring[0].shape != shape:
            self._ring = [np.empty(shape, dtype=np.float32) for _ in range(2)]
        chunks = [x[i : i + self.host_chunk] for i in range(0, len(x), self.host_chunk)]

        def submit(j: int):
            return self._pool.submit(self._stft, chunks[j], self._ring[j % 2][: len(chunks[j])])

        pending = submit(0)
        for j in range(len(chunks)):
            power = pending.result()
            if j + 1 < len(chunks):
                pending = submit(j + 1)
            yield power

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The graph's ``clipwise`` output for its input ``x`` (waveforms, or power spectra on the host path)."""
        raise NotImplementedError

    def _run_each(self, inputs: Iterator[np.ndarray]) -> np.ndarray:
        """`_run` on each of ``inputs``, the outputs concatenated in order."""
        return np.concatenate([self._run(x) for x in inputs])

    def _windows(self, windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.features.clip_samples:
            raise ParameterError(
                f"{type(self).__name__}: expected (batch, {self.features.clip_samples}) windows "
                f"({self.features.clip_duration} s at {self.features.sample_rate} Hz), got shape {tuple(np.shape(windows))}"
            )
        return x

    def _empty(self) -> np.ndarray:
        return np.zeros((0, len(self.labels)), dtype=np.float32)


class OnnxScorer(_ExportedScorer):
    """An ONNX file written by :func:`birdcall.export.export_onnx`, run by ONNX Runtime on CPU.

    Args:
        path: the ``.onnx`` file; labels and feature config come from its metadata.
        threads: ONNX Runtime intra-op threads (None or 0: its default, one per physical core).
        frontend: where the STFT runs (:mod:`birdcall.export.host`): ``"host"`` (pocketfft, then the graph from
            its power spectrum on), ``"graph"`` (the whole graph) or ``"auto"`` (host when the file allows it).
            Both give the same probabilities to `birdcall.export.metadata.TOLERANCE` (checked at export).

    Raises:
        ParameterError: an unknown ``frontend``, or ``"host"`` with an export that does not allow it.
        CheckpointError: missing file, not ONNX, no birdcall metadata, or more or fewer labels than the graph
            has outputs.
    """

    def __init__(self, path: Pathlike, *, threads: int | None = None, frontend: str = "auto"):
        import onnxruntime as ort

        from ..export.metadata import INPUT_NAME, OUTPUT_NAME, POWER_TENSOR, check_num_outputs, parse_metadata

        _check_threads(threads)
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(self.path, "file not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types (Fail, InvalidGraph...)
            raise CheckpointError(self.path, f"ONNX Runtime cannot load it ({' '.join(str(err).split())[:300]})") from None
        self.labels, self.features, self.info = parse_metadata(self.session.get_modelmeta().custom_metadata_map, path=self.path)
        shapes = {output.name: output.shape for output in self.session.get_outputs()}
        if OUTPUT_NAME not in shapes:
            raise CheckpointError(self.path, f"exported graph without a {OUTPUT_NAME!r} output")
        check_num_outputs(self.labels, (shapes[OUTPUT_NAME] or [None])[-1], path=self.path)  # before any scoring
        self._use_frontend(frontend, self.info)
        self._input = INPUT_NAME
        if self.frontend == "host":
            import onnx

            from ..export.host import onnx_body

            body = onnx_body(onnx.load(str(self.path)), ["clipwise"])
            self.session = ort.InferenceSession(body.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
            self._input = POWER_TENSOR

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(["clipwise"], {self._input: x})[0]


class OpenVinoScorer(_ExportedScorer):
    """An OpenVINO IR written by :func:`birdcall.export.export_openvino` (or a birdcall ``.onnx`` file, which
    OpenVINO reads directly), compiled for the CPU.

    Args:
        path: the ``.xml`` (with its ``.bin``) or ``.onnx`` file; labels and features come from its metadata.
        threads: ``INFERENCE_NUM_THREADS`` (None or 0: OpenVINO's default).
        precision: ``INFERENCE_PRECISION_HINT``. ``"f32"`` matches torch to 1e-4; OpenVINO's own default on
            CPUs with AVX512-BF16/AMX is ``"bf16"``: faster, but up to ~3e-2 off torch's probabilities (measured
            on a test CRNN).
        streams: OpenVINO CPU streams (``NUM_STREAMS``; None: 1). With ``n > 1`` each call splits its batch
            into ``n`` parts run at once by ``n`` infer requests, each stream on its share of the threads; the
            results are identical, only the speed differs (`benchmarks/RESULTS.md`).
        frontend: where the STFT runs, as in :class:`OnnxScorer`.

    The infer requests are reused across calls: use one scorer per thread.

    With ``frontend="host"``, the cut graph is compiled for a static batch of `host_chunk` windows and fed
    chunk after chunk through one job per stream.

    Raises:
        ParameterError: OpenVINO is not installed, or a bad ``streams`` or ``frontend``.
        CheckpointError: missing or unreadable file, no birdcall metadata, or more or fewer labels than the
            graph has outputs.
    """

    host_chunk = 2  # windows per infer request on the host-STFT path: a static batch (see __init__)

    def __init__(
        self, path: Pathlike, *, threads: int | None = None, precision: str = "f32", streams: int | None = None, frontend: str = "auto"
    ):
        from ..export.info import import_openvino, read_ir
        from ..export.metadata import check_num_outputs, openvino_num_outputs

        ov = import_openvino()
        _check_threads(threads)
        if streams is not None and (not is_int(streams) or streams < 1):
            raise ParameterError(f"streams must be a positive integer or None, got {streams!r}")
        self.path = Path(path)
        core = ov.Core()
        if self.path.suffix == ".onnx":
            from ..export import read_export_info

            self.labels, self.features, self.info = read_export_info(self.path)
            model = core.read_model(str(self.path))
        else:
            model, self.labels, self.features, self.info = read_ir(self.path, core)
        check_num_outputs(self.labels, openvino_num_outputs(model, path=self.path), path=self.path)  # before any scoring
        self._use_frontend(frontend, self.info)
        if self.frontend == "host":
            from ..export.host import openvino_body

            model = openvino_body(ov, model)
            # A static batch of host_chunk rows per infer request: OpenVINO's kernels for a static shape ran the
            # efficientnet_b0 body ~9 % faster than the dynamic batch (2 rows: 7.5 ms per window, 2 streams, 2
            # cores; 4 rows 7.6; dynamic 8.2); a short last chunk is padded with zeros (`_run_each`).
            n_frames, n_bins = list(model.get_parameters()[0].get_partial_shape())[1:]
            model.reshape({0: [self.host_chunk, n_frames, n_bins]})
        config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if streams:
            config["NUM_STREAMS"] = streams
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as err:
            raise ParameterError(f"{self.path}: OpenVINO cannot compile it with {config} ({' '.join(str(err).split())[:300]})") from None
        self._output = self.compiled.output("clipwise")
        if self.frontend == "host":
            # one job per stream, fed chunk after chunk as each becomes free: no stream waits for the other
            # between chunks, as it would with `_run`'s split of each input across the streams
            self._queue = ov.AsyncInferQueue(self.compiled, streams or 1)
            self._queue.set_callback(self._collect)
            self._results: dict[int, np.ndarray] = {}
        else:  # `_run`: each call's batch split across one infer request per stream
            self._requests = [self.compiled.create_infer_request() for _ in range(streams or 1)]

    def _collect(self, request, index: int) -> None:
        self._results[index] = np.array(request.get_tensor(self._output).data, dtype=np.float32)  # a copy: buffers are reused

    def _run_each(self, inputs: Iterator[np.ndarray]) -> np.ndarray:
        self._results.clear()
        count, rows = 0, []
        try:
            for count, x in enumerate(inputs, start=1):
                rows.append(len(x))
                if len(x) < self.host_chunk:  # the static batch: pad a short last chunk, drop its rows after
                    x = np.concatenate([x, np.zeros((self.host_chunk - len(x), *x.shape[1:]), dtype=x.dtype)])
                self._queue.start_async({0: x}, count - 1)  # waits while every job is busy
        finally:
            self._queue.wait_all()  # also when the host STFT failed: no late result may land in the next call
        if len(self._results) != count:  # a failed callback: report it here rather than return short
            raise RuntimeError(f"{self.path}: OpenVINO returned {len(self._results)} of {count} results")
        return np.concatenate([self._results[i][:n] for i, n in enumerate(rows)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        parts = [part for part in np.array_split(x, len(self._requests)) if len(part)]
        if len(parts) == 1:
            result = self._requests[0].infer({0: x})
            return np.array(result[self._output], dtype=np.float32)  # a copy: the request reuses its buffers
        for request, part in zip(self._requests, parts):
            request.start_async({0: part})
        for request in self._requests[: len(parts)]:
            request.wait()
        return np.concatenate([np.array(request.get_tensor(self._output).data, dtype=np.float32) for request in self._requests[: len(parts)]])


def _exported_on_the_fly(path: Path, backend: str, threads: int | None, streams: int | None = None, frontend: str = "auto") -> Scorer:
    """Export a checkpoint to ONNX in a temporary folder and open it with ``backend``; nothing is kept on disk."""
    from ..export import export_onnx
    from ..models import load_model

    net, labels, _ = load_model(path)
    with tempfile.TemporaryDirectory(prefix="birdcall-export-", ignore_cleanup_errors=True) as tmp:
        onnx_path = export_onnx(net, Path(tmp) / f"{path.stem}.onnx", labels=labels)
        if backend == "onnx":
            scorer = OnnxScorer(onnx_path, threads=threads, frontend=frontend)
        else:
            scorer = OpenVinoScorer(onnx_path, threads=threads, streams=streams, frontend=frontend)
    scorer.path = path
    return scorer


def load_scorer(
    model: Pathlike, *, backend: str = "torch", threads: int | None = None, streams: int | None = None, frontend: str = "auto"
) -> Scorer:
    """Open ``model`` as a :class:`Scorer`.

    ``backend="onnx"`` runs a ``.onnx`` file (:class:`OnnxScorer`); ``"openvino"`` runs an OpenVINO IR ``.xml``
    or a ``.onnx`` file (:class:`OpenVinoScorer`, float32). Given a ``.safetensors`` checkpoint, both export it
    on the fly to a temporary ONNX file (checked against torch, a few seconds; deleted once loaded): the
    scores are the same as with ``birdcall export`` first, which saves the export time on every run.

    Args:
        model: a birdcall checkpoint (``.safetensors``) or an exported model (``.onnx``, ``.xml``).
        backend: ``"torch"``, ``"onnx"`` or ``"openvino"``.
        threads: intra-op threads of the backend (None: its default).
        streams: OpenVINO only: CPU streams, each call's batch split across them (:class:`OpenVinoScorer`).
        frontend: onnx and openvino only: where the STFT runs, ``"auto"``, ``"host"`` or ``"graph"``
            (:class:`OnnxScorer`); the torch backend always runs its own front end and accepts only ``"auto"``.

    Raises:
        ParameterError: unknown backend or frontend, a model file the backend cannot run, or OpenVINO not installed.
        CheckpointError: the model file is missing or malformed, an exported file lacks birdcall metadata, or
            a model's number of labels differs from its number of outputs (checked here, before any scoring).
        ExportError: an on-the-fly export does not match torch.
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if streams is not None and backend != "openvino":
        raise ParameterError(f"streams applies to the openvino backend only, not {backend!r}")
    if frontend != "auto" and backend == "torch":
        raise ParameterError(f"frontend={frontend!r} applies to the onnx and openvino backends only, not torch")
    path = Path(model)
    if backend == "torch":
        if path.suffix != ".safetensors":
            raise ParameterError(f"{path}: the torch backend runs birdcall checkpoints (.safetensors)")
        from ..models import load_model

        net, labels, _ = load_model(path)
        return TorchScorer(net, labels=labels, threads=threads)
    _check_threads(threads)
    if path.suffix == ".safetensors":
        return _exported_on_the_fly(path, backend, threads, streams, frontend)
    if backend == "onnx":
        if path.suffix != ".onnx":
            raise ParameterError(f"{path}: the onnx backend runs .onnx files (or .safetensors checkpoints, exported on the fly)")
        return OnnxScorer(path, threads=threads, frontend=frontend)
    if path.suffix not in (".xml", ".onnx"):
        raise ParameterError(f"{path}: the openvino backend runs OpenVINO IR .xml or .onnx files (or .safetensors checkpoints)")
    return OpenVinoScorer(path, threads=threads, streams=streams, frontend=frontend)


# ------------------------------------------------------------------------------------------------ embedders

BIRDNET = "birdnet"  # the model name that load_embedder opens as BirdNET V2.4 (a path of that name: write ./birdnet)


@runtime_checkable
class Embedder(Protocol):
    """``embedder(windows)``: ``(batch, round(clip_duration * sample_rate))`` float32 audio -> ``(batch, dim)`` float32.

    ``pad`` fills a file shorter than one window (``"zero"`` or ``"wrap"``, as ``FeatureConfig.pad``);
    ``settings`` is a JSON-able description of what makes the vectors (model, version, licence, digest, layer,
    pooling), kept in a run's settings and in the embedding table's metadata.
    """

    sample_rate: int
    clip_duration: float
    pad: str
    dim: int
    settings: dict

    def __call__(self, windows: np.ndarray) -> np.ndarray: ...


class TorchEmbedder:
    """The penultimate layer of a birdcall torch model as an :class:`Embedder`.

    The vector of a window is ``model.forward_head(model.forward_features(x), pre_logits=True)``: the pooled
    backbone features a CNN's classifier sees (``num_features`` values). A frame model (SED, CRNN) gives frame
    features ``(batch, frames, num_features)`` there, which are averaged over the frames.

    Args:
        model: a birdcall model (the model contract: ``forward_features``, ``forward_head``, ``num_features``,
            ``feature_config``).
        settings: more entries for :attr:`settings` (the checkpoint's name and digest, say).
        threads: torch intra-op threads.
    """

    def __init__(self, model, *, settings: dict | None = None, threads: int | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        features = model.feature_config
        self.sample_rate, self.clip_duration, self.pad = int(features.sample_rate), float(features.clip_duration), features.pad
        self.dim = int(model.num_features)
        frames = hasattr(model, "frame_features")
        config = getattr(model, "config", None)
        self.settings = {
            "name": "birdcall",
            "arch": getattr(config, "arch", None),
            "backbone": getattr(config, "backbone", None),
            "layer": "forward_head(pre_logits=True)" + (", mean over frames" if frames else ""),
            **(settings or {}),
        }
        if threads:
            torch.set_num_threads(threads)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            out = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
            if out.ndim == 3:  # frame features (batch, frames, num_features)
                out = out.mean(dim=1)
            return out.float().numpy()


class BirdNetEmbedder:
    """BirdNET's pooled window features (:func:`birdcall.birdnet.window_features`) as an :class:`Embedder`.

    The same function makes the features of training clips (:func:`birdcall.birdnet.clip_features`), so
    vectors computed here match those of a clip loaded at the same ``sample_rate``.

    Args:
        model: a :class:`~birdcall.birdnet.BirdNetModel` or anything with its call signature (the test
            stand-in :class:`birdcall.testing.birdnet.StandInBirdNet`); None opens BirdNET V2.4.
        config: the features (None: :class:`~birdcall.birdnet.BirdNetFeatureConfig` defaults).
        sample_rate: the rate windows arrive at. BirdNET's own 48 kHz by default: the engine then resamples each
            file once while decoding it, and windows go to BirdNET as they are.
        threads: LiteRT threads when ``model`` is None.

    Raises:
        MissingExtraError: ``model`` is None and the BirdNET extra is not installed.
    """

    pad = "wrap"  # a file shorter than a window is tiled, as features.pad="wrap" and clip_features fill short clips

    def __init__(self, model=None, *, config=None, sample_rate: int | None = None, threads: int | None = None):
        from ..birdnet import BIRDNET_LICENSE, NON_COMMERCIAL_NOTE, BirdNetFeatureConfig, BirdNetModel, feature_dim

        self.config = config if config is not None else BirdNetFeatureConfig()
        if not isinstance(self.config, BirdNetFeatureConfig):
            raise ParameterError(f"config must be a BirdNetFeatureConfig, got {type(self.config).__name__}")
        self.model = model if model is not None else BirdNetModel(threads=threads or None)
        self.sample_rate = int(sample_rate or self.model.sample_rate)
        self.clip_duration = self.config.window
        self.dim = feature_dim(self.config, embedding_dim=int(self.model.embedding_dim), num_classes=int(self.model.num_classes))
        license_ = getattr(self.model, "license", None)
        self.settings = {
            "name": getattr(self.model, "name", type(self.model).__name__),
            "version": getattr(self.model, "version", None),
            "license": license_,
            "note": NON_COMMERCIAL_NOTE if license_ == BIRDNET_LICENSE else None,
            "digest": getattr(self.model, "digest", None),
            "layer": "embedding before the classifier (GLOBAL_AVG_POOL), pooled over sub-windows"
            + (", then max-pooled logits" if self.config.logits else ""),
            "features": asdict(self.config),
        }

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        from ..birdnet import window_features

        return window_features(windows, sample_rate=self.sample_rate, model=self.model, config=self.config)


def load_embedder(model: Pathlike, *, birdnet=None, threads: int | None = None) -> Embedder:
    """Open ``model`` as an :class:`Embedder`.

    Args:
        model: ``"birdnet"`` (:data:`BIRDNET`: BirdNET V2.4, the optional extra) or a birdcall checkpoint
            (``.safetensors``: its penultimate layer, :class:`TorchEmbedder`).
        birdnet: a :class:`~birdcall.birdnet.BirdNetFeatureConfig` (``"birdnet"`` only; None: the defaults).
        threads: intra-op threads (LiteRT or torch).

    Raises:
        ParameterError: an exported model (``.onnx``, ``.xml``: no penultimate output), an unknown suffix, or
            BirdNET settings for a birdcall model.
        MissingExtraError: ``"birdnet"`` without the extra installed.
        CheckpointError: a missing or malformed checkpoint.
    """
    _check_threads(threads)
    if str(model) == BIRDNET:
        return BirdNetEmbedder(config=birdnet, threads=threads)
    if birdnet is not None:
        raise ParameterError(f"{model}: BirdNET feature settings (--step) apply to --model birdnet only")
    path = Path(model)
    if path.suffix.lower() in (".onnx", ".xml"):
        raise ParameterError(f"{path}: an exported model has no penultimate-layer output; embed with its .safetensors checkpoint")
    if path.suffix.lower() != ".safetensors":
        raise ParameterError(f"{path}: expected {BIRDNET!r} or a birdcall checkpoint (.safetensors)")
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    from ..models import load_model

    net, _, _ = load_model(path)
    return TorchEmbedder(net, settings={"name": path.name, "digest": hash_files([path])}, threads=threads)
