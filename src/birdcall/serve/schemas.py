"""The JSON bodies of `birdcall serve` (pydantic models: the OpenAPI schema at ``/openapi.json`` and ``/docs``).

Names follow the detection table of ``birdcall analyze`` (``start_time``, ``end_time``, ``code``,
``scientific_name``, ``common_name``, ``confidence``); times are seconds, frequencies Hz.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "AnalyzeResponse", "Detection", "ErrorResponse", "HealthResponse", "JobsLoad", "ModelResponse", "Options", "Species",
    "SpeciesResponse", "SpectrogramImage", "Tables", "WindowSettings",
]  # fmt: skip


class ErrorResponse(BaseModel):
    """Every error: one line saying what went wrong (for a file, ``"<name>: <reason>"`` as ``birdcall analyze`` says it)."""

    detail: str = Field(examples=["rec.wav: not an audio file (format not recognised by libsndfile)"])


class Detection(BaseModel):
    """One (window, species) pair that passed the threshold and the species filters."""

    start_time: float = Field(description="Window start, seconds from the start of the file.")
    end_time: float = Field(description="Window end, seconds.")
    code: str = Field(description="Species code (the model's label).")
    scientific_name: str
    common_name: str
    confidence: float = Field(description="The model's probability for the species in the window.")


class LocationFilter(BaseModel):
    """The species filter by place and season the analysis ran with."""

    lat: float
    lon: float
    week: int = Field(description="BirdNET's week of the year (1-48), or -1: all year.")
    mode: str = Field(description="filter or weight.")
    threshold: float = Field(description="Lowest occurrence probability of an expected species.")
    source: str = Field(description="birdnet (BirdNET's location model) or occurrence (the server's table).")
    unknown: int = Field(description="Species of the model the source does not know (kept as they are).")
    expected: int = Field(0, description="Species of the model expected there and then.")


class Options(BaseModel):
    """The options the analysis ran with (those of ``birdcall analyze``)."""

    min_confidence: float
    top_k: int | None
    hop: float = Field(description="Seconds between window starts.")
    include: list[str] | None
    exclude: list[str] | None
    location: LocationFilter | None = None


class SpectrogramImage(BaseModel):
    """The recording's spectrogram: ``width`` columns over ``duration`` seconds, 0 Hz (bottom) to ``fmax`` (top)."""

    png: str = Field(description="data: URI of the PNG image.")
    duration: float
    fmax: float
    width: int
    height: int


class Tables(BaseModel):
    """The detection tables as ``birdcall analyze`` writes them for this file."""

    csv: str | None = Field(None, description="detections.csv")
    raven: str | None = Field(None, description="raven/<stem>.selections.txt (Raven Pro selection table)")


class AnalyzeResponse(BaseModel):
    file: str = Field(description="The uploaded file's name (as the client gave it, without any folder).")
    duration: float = Field(description="Seconds of audio in the file.")
    windows: int = Field(description="Windows scored.")
    model: str = Field(description="Name of the model that scored them.")
    backend: str | None = Field(description="Runtime that ran the model (torch, onnx, openvino).")
    options: Options
    detections: list[Detection]
    elapsed: float = Field(description="Seconds the analysis took on the server (queue wait excluded).")
    spectrogram: SpectrogramImage | None = None
    tables: Tables | None = None


class Species(BaseModel):
    code: str
    scientific_name: str
    common_name: str


class SpeciesResponse(BaseModel):
    count: int
    species: list[Species]


class JobsLoad(BaseModel):
    running: int = Field(description="Analyses in progress in this server process.")
    waiting: int = Field(description="Requests queued for an analysis job.")
    capacity: int = Field(description="Requests this process takes at once (jobs + queue); more get 503.")


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(description="birdcall's version.")
    model_loaded: bool
    model: str
    backend: str | None
    torch_imported: bool = Field(description="Whether this server process has imported torch (never with an ONNX or OpenVINO model).")
    jobs: JobsLoad


class WindowSettings(BaseModel):
    sample_rate: int = Field(description="Hz the audio is resampled to.")
    clip_duration: float = Field(description="Seconds per window.")
    default_hop: float = Field(description="Seconds between window starts when no hop is given.")
    pad: str = Field(description="How a file shorter than one window is filled (zero or wrap).")


class ModelResponse(BaseModel):
    name: str
    files: list[str] = Field(description="The model's files, relative to the model the server was started with.")
    arch: str | None
    backbone: str | None
    backend: str | None
    backend_note: str = Field(description="Which export runs a checkpoint, when one does.")
    license: str | None = Field(description="The licence a model header names (BirdNET's for models built on it); null: none recorded.")
    note: str | None = Field(description="Terms that go with the licence (BirdNET's non-commercial note).")
    labels: list[Species]
    features: dict = Field(description="The model's front end (FeatureConfig).")
    window: WindowSettings
