"""`birdcall serve`: an HTTP service and a web page over a model (see :mod:`birdcall.serve`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, user_errors
from .predict import (
    LAT,
    LOCATION_MODE,
    LOCATION_THRESHOLD,
    LON,
    OCCURRENCE,
    OCCURRENCE_RADIUS,
    WEEK,
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model_path: Path = typer.Option(..., "--model", help="A .safetensors checkpoint, a training run folder (ensemble of its folds), an .onnx or OpenVINO .xml model."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface; the default answers this machine only)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Server processes, each with the model loaded once."),
    max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", help="Largest upload accepted (MB); a larger one gets HTTP 413."),
    api_key: str = typer.Option(None, "--api-key", envvar="BIRDCALL_API_KEY", show_envvar=True,
                                help="Require this key on every /v1 route (X-API-Key header). The environment variable keeps it out of `ps`."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds a request may take (upload, queue and analysis); then HTTP 504."),
    jobs: int = typer.Option(2, "--jobs", help="Analyses at once per process (they share the model: one decodes while another is scored)."),
    queue: int = typer.Option(16, "--queue", help="Requests that may wait for a job per process; more get HTTP 503 at once."),
    backend: str = typer.Option(None, "--backend", help="torch, onnx or openvino; default as `birdcall analyze` (a checkpoint runs its cached OpenVINO export)."),
    threads: int = typer.Option(None, "--threads", help="Intra-op threads of the backend."),
    cors_origin: list[str] = typer.Option(None, "--cors-origin", help="Allow pages of this origin to call the API (repeat; default: CORS off)."),
    tmp_dir: Path = typer.Option(None, "--tmp-dir", help="Folder for uploads in flight (default: the system's temporary folder)."),
    lat: float = LAT,
    lon: float = LON,
    week: int = WEEK,
    location_mode: str = LOCATION_MODE,
    location_threshold: float = LOCATION_THRESHOLD,
    occurrence: Path = OCCURRENCE,
    occurrence_radius: float = OCCURRENCE_RADIUS,
) -> None:
    """Serve a model over HTTP: a web page at / to upload or record audio and see the detections, and a JSON API under /v1 (docs at /docs).

    Routes: POST /v1/analyze (an upload's detections, or ?format=csv|raven the tables `birdcall analyze` writes), GET /v1/species, GET /v1/model, GET /v1/health.

    --lat/--lon/--week set a server-wide species filter by place and season; a request's lat, lon, week and location_mode override it.
    """
    from ..serve import ServeConfig
    from ..serve.server import serve as run

    with user_errors():
        config = ServeConfig(
            model=str(model_path), host=host, port=port, workers=workers, max_upload_mb=max_upload_mb, api_key=api_key, timeout=timeout,
            jobs=jobs, queue=queue, backend=backend, threads=threads, cors_origins=tuple(cors_origin or ()),
            tmp_dir=str(tmp_dir) if tmp_dir is not None else None, lat=lat, lon=lon, week=week, location_mode=location_mode,
            location_threshold=location_threshold, occurrence=str(occurrence) if occurrence is not None else None, occurrence_radius=occurrence_radius,
        )  # fmt: skip

        def ready(app) -> None:
            where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
            if app is not None:
                service = app.state.service
                backend_text = service.backend or "scorer object"
                console.print(f"birdcall serve: {service.name} ({len(service.labels)} species, {backend_text}) at {where}", highlight=False)
            else:
                console.print(f"birdcall serve: {model_path} in {workers} processes at {where}", highlight=False)
            if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
                console.print("[yellow]warning:[/] listening beyond this machine without --api-key: anyone who reaches it can use it", highlight=False)

        run(config, on_ready=ready)
