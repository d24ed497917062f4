"""The settings of a `birdcall serve` process: :class:`ServeConfig`, and its round trip through the environment
that carries it to uvicorn's worker processes (no fastapi import here)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from .._validate import check_choice, check_float, check_int
from ..errors import ParameterError

__all__ = ["API_KEY_ENV", "CONFIG_ENV", "ServeConfig"]

API_KEY_ENV = "BIRDCALL_API_KEY"
"""Environment variable holding the API key (safer than ``--api-key``, which other users can see in ``ps``)."""
CONFIG_ENV = "BIRDCALL_SERVE_CONFIG"
"""Environment variable that hands a :class:`ServeConfig` (JSON, without the API key) to uvicorn's workers."""


@dataclass(frozen=True)
class ServeConfig:
    """How `birdcall serve` runs: the model, the network side and the limits.

    Attributes:
        model: what ``birdcall analyze --model`` takes: a ``.safetensors`` checkpoint, a training run folder, an
            ``.onnx`` or OpenVINO ``.xml`` model.
        host: address to listen on (the default answers this machine only).
        port: TCP port.
        workers: server processes, each with the model loaded once (uvicorn workers).
        max_upload_mb: largest upload accepted, MB (10**6 bytes); a larger one gets 413 as soon as it is known.
        api_key: required on every ``/v1`` route when set (``X-API-Key`` header or ``Authorization: Bearer``).
        timeout: seconds a request may take from its first byte to its answer (upload, queue and analysis);
            past it the analysis stops and the client gets 504.
        jobs: analyses run at once per process; they share the model (one call at a time), so one decodes
            while another is scored.
        queue: requests waiting for a job per process; beyond ``jobs + queue`` the server answers 503 at once.
        backend: ``torch``, ``onnx`` or ``openvino``; None: as ``birdcall analyze`` (a checkpoint runs its
            cached OpenVINO export, an export its own runtime).
        threads: intra-op threads of the backend (None: its default).
        batch_size: windows per model call.
        cors_origins: origins allowed to call the API from another site's page (none: CORS off).
        tmp_dir: folder for the uploads in flight (None: the system's temporary folder).
        lat, lon, week, location_mode, location_threshold, occurrence, occurrence_radius: the server-wide species
            filter by place and season (:class:`~birdcall.infer.location.LocationOptions`; none without ``lat``
            and ``lon``); a request's ``lat``, ``lon``, ``week`` and ``location_mode`` override them.
    """

    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_upload_mb: float = 200.0
    api_key: str | None = None
    timeout: float = 300.0
    jobs: int = 2
    queue: int = 16
    backend: str | None = None
    threads: int | None = None
    batch_size: int = 32
    cors_origins: tuple[str, ...] = ()
    tmp_dir: str | None = None
    lat: float | None = None
    lon: float | None = None
    week: int | None = None
    location_mode: str = "filter"
    location_threshold: float = 0.03
    occurrence: str | None = None
    occurrence_radius: float = 50.0

    def __post_init__(self) -> None:
        owner = "serve"
        if not isinstance(self.model, str) or not self.model:
            raise ParameterError(f"{owner}: model must be a path, got {self.model!r}")
        check_int("port", self.port, min=0, max=65535, owner=owner)
        check_int("workers", self.workers, min=1, owner=owner)
        check_float("max_upload_mb", self.max_upload_mb, min=0.0, min_inclusive=False, owner=owner)
        check_float("timeout", self.timeout, min=0.0, min_inclusive=False, owner=owner)
        check_int("jobs", self.jobs, min=1, owner=owner)
        check_int("queue", self.queue, min=0, owner=owner)
        check_int("batch_size", self.batch_size, min=1, owner=owner)
        if self.threads is not None:
            check_int("threads", self.threads, min=1, owner=owner)
        if self.backend is not None:
            check_choice("backend", self.backend, ("torch", "onnx", "openvino"), owner=owner)
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise ParameterError(f"{owner}: the API key must be a non-empty string")
        object.__setattr__(self, "cors_origins", tuple(str(o) for o in self.cors_origins))
        self.location()  # validates the filter's values

    def location(self) -> dict:
        """The server's location settings as :class:`~birdcall.serve.service.ModelService` takes them: the keys of
        :class:`~birdcall.infer.location.LocationOptions` (``lat``, ``lon``, ``week`` None when not given).

        Raises:
            ParameterError: a value out of range, named as its command-line flag.
        """
        from ..infer.location import CLI_NAMES, check_location

        settings = {"lat": self.lat, "lon": self.lon, "week": self.week, "mode": self.location_mode, "threshold": self.location_threshold,
                    "radius_km": self.occurrence_radius}  # fmt: skip
        place = (self.lat, self.lon, self.week) != (None, None, None)
        check_location(**(settings if place else {**settings, "lat": 0.0, "lon": 0.0}), names=CLI_NAMES)  # no place: check the rest
        return {**settings, "occurrence": self.occurrence}

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def to_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads back: the settings as JSON, the key apart."""
        settings = {k: v for k, v in asdict(self).items() if k != "api_key"}
        env = {CONFIG_ENV: json.dumps(settings)}
        if self.api_key is not None:
            env[API_KEY_ENV] = self.api_key
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeConfig:
        """The config that :meth:`to_env` wrote (the API key from :data:`API_KEY_ENV`).

        Raises:
            ParameterError: :data:`CONFIG_ENV` is missing or not a JSON object of config fields.
        """
        environ = os.environ if environ is None else environ
        try:
            settings = json.loads(environ[CONFIG_ENV])
        except (KeyError, json.JSONDecodeError):
            raise ParameterError(f"serve: {CONFIG_ENV} must hold the server settings as JSON (birdcall serve sets it)") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(settings, dict) or not set(settings) <= known:
            raise ParameterError(f"serve: {CONFIG_ENV} holds unknown settings")
        settings["api_key"] = environ.get(API_KEY_ENV) or None
        settings["cors_origins"] = tuple(settings.get("cors_origins") or ())
        return cls(**settings)
