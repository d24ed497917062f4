"""The options of an inference run (:func:`birdcall.infer.run.run_inference`), each a frozen dataclass passed
whole: which windows (:class:`WindowOptions`), how the engine runs (:class:`EngineOptions`) and what a
detection table keeps (:class:`DetectionOptions`). The service and the Ray engine take the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParameterError
from .long_recording import WindowSpec
from .ray_engine import RayOptions

__all__ = ["ENGINES", "DetectionOptions", "EngineOptions", "WindowOptions"]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class WindowOptions:
    """The windows of a run, less what the model fixes (sample rate, clip duration, padding: see
    :class:`~birdcall.infer.long_recording.WindowSpec`, which :meth:`spec` completes with them).

    Attributes:
        hop: seconds between window starts (None: the clip duration).
        tta_shifts: time shifts (s) averaged per window; ``(0.0,)`` is no TTA.
        chunk_duration: seconds decoded at a time. The decoder runs up to a few chunks ahead of the model, so
            this sets the memory in flight: 30 s kept peak RSS at 316-320 MB on a 10-min and a 60-min file in
            every run (mobilenetv3_large, OpenVINO), where 60 s gave 314-362 and 352-370 MB, as the decoder got
            ahead or not; speed was the same within noise (efficientnet_b0) or up to ~5 % lower (mobilenetv3).
    """

    hop: float | None = None
    tta_shifts: tuple[float, ...] = (0.0,)
    chunk_duration: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.tta_shifts, list):
            object.__setattr__(self, "tta_shifts", tuple(self.tta_shifts))

    def spec(self, sample_rate: int, clip_duration: float, pad: str) -> WindowSpec:
        """The :class:`~birdcall.infer.long_recording.WindowSpec` of a model with these rate, duration and padding."""
        return WindowSpec(sample_rate, clip_duration, self.hop, tuple(self.tta_shifts), "pad", self.chunk_duration, pad)


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs a model over the files; none of these change which windows are scored.

    Attributes:
        batch_size: rows per scorer call (each TTA shift of a window is a row).
        workers: decoding processes (0: a decoding thread in this process).
        start_method: ``multiprocessing`` start method of the workers (``spawn`` or ``forkserver``).
        shard: ``(I, N)`` or ``"I/N"``: run only shard I of N (:func:`~birdcall.infer.inputs.select_shard`).
        backend: scorer backend, ``torch``, ``onnx`` or ``openvino``. None: from the model's suffix, except that a
            ``detections`` or ``submission`` run gives a torch checkpoint (or each of a run folder) to its cached
            OpenVINO export (:mod:`birdcall.infer.cache`; torch with a warning when there is none), unless it
            resumes a run recorded with the suffix's backend (which keeps it).
        threads: backend intra-op threads.
        streams: OpenVINO CPU streams, each scorer call's batch split across them (openvino backend only; None:
            :func:`~birdcall.infer.models.default_streams`).
        frontend: where an exported model computes its STFT (:func:`~birdcall.infer.models.open_model`); the
            scores agree to 1e-4.
        engine: ``"local"`` (this process, with ``workers`` decoding) or ``"ray"``: Ray actors score the files
            (:mod:`birdcall.infer.ray_engine`; ``workers`` and ``start_method`` do not apply). Same outputs either way.
        ray: where and how wide the Ray engine runs (None: :class:`~birdcall.infer.ray_engine.RayOptions` defaults).
    """

    batch_size: int = 32
    workers: int = 0
    start_method: str = "spawn"
    shard: tuple[int, int] | str | None = None
    backend: str | None = None
    threads: int | None = None
    streams: int | None = None
    frontend: str = "auto"
    engine: str = "local"
    ray: RayOptions | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ParameterError(f"engine must be one of {ENGINES}, got {self.engine!r}")


@dataclass(frozen=True)
class DetectionOptions:
    """What :func:`~birdcall.infer.detections.to_detections` keeps of each file's scores."""

    min_confidence: float = 0.1
    top_k: int | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(str(c) for c in value))

    def kwargs(self) -> dict:
        return {"min_confidence": self.min_confidence, "top_k": self.top_k, "include": self.include, "exclude": self.exclude}
