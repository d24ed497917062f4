"""The HTTP side of `birdcall serve`: a FastAPI app over a :class:`~birdcall.serve.service.ModelService`.

Routes (every ``/v1`` route asks for the API key when the server has one):

* ``POST /v1/analyze``: an uploaded recording's detections (JSON), or ``?format=csv|raven`` the tables
  ``birdcall analyze`` writes; ``spectrogram=true`` adds a PNG spectrogram, ``tables=true`` both tables.
* ``GET /v1/species``, ``GET /v1/model``, ``GET /v1/health``.
* ``GET /``: the web page (``static/``, package data: no CDN, works offline); ``GET /docs``: the OpenAPI docs
  (Swagger UI from the fastapi-offline package, also offline); ``GET /openapi.json``.

Every error is JSON ``{"detail": "<one line>"}``: 400 a malformed upload, 401 a missing or wrong key, 413 an
upload over the limit (known from ``Content-Length`` or while streaming), 422 bad options or a file that is
not audio (the reason ``birdcall analyze`` gives, naming the client's file), 503 every job and queue place
taken, 504 past the time limit, 500 anything unexpected (logged; the server goes on). Each upload lives in a
folder of its own, removed when the request and its analysis are both over.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..config import to_dict
from ..errors import AudioLoadError, BirdcallError, MissingExtraError, ParameterError
from ..infer.run import DetectionOptions
from . import schemas
from .config import ServeConfig
from .service import (
    TABLE_FORMATS,
    AnalysisCancelled,
    AnalysisTimeout,
    Job,
    ModelService,
    ServerBusy,
    remove_folder,
)
from .uploads import BadUpload, UploadTooLarge, receive_upload

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("birdcall.serve")
STATIC = Path(__file__).parent / "static"
UPLOAD_PREFIX = "birdcall-serve-"
PAGE_POLICY = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
               "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'")  # fmt: skip
_STATUS = ((UploadTooLarge, 413), (BadUpload, 400), (AudioLoadError, 422), (ParameterError, 422), (MissingExtraError, 422), (ServerBusy, 503),
           (AnalysisTimeout, 504), (AnalysisCancelled, 504))  # fmt: skip
_ERRORS = {code: {"model": schemas.ErrorResponse} for code in (400, 401, 413, 422, 503, 504)}
_MEDIA = {"csv": ("text/csv; charset=utf-8", "detections.csv"), "raven": ("text/plain; charset=utf-8", "selections.txt")}
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "audio/*": {"schema": {"type": "string", "format": "binary"}},
    },
    "description": "The recording (any format birdcall reads: WAV, FLAC, OGG, MP3, AIFF...): a multipart form with a "
    "`file` field, or the file itself as the body (its name in `filename`).",
}


def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": " ".join(str(detail).split())}, status_code=status, headers=headers)


def _codes(values: list[str] | None) -> tuple[str, ...] | None:
    """Species codes from repeated and/or comma-separated query values (None: no list given)."""
    if values is None:
        return None
    return tuple(dict.fromkeys(c.strip() for v in values for c in v.split(",") if c.strip()))


def _attachment(name: str, suffix: str) -> str:
    """``Content-Disposition`` of a table named after the upload: an ASCII fallback and the UTF-8 name."""
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    filename = f"{stem}.{suffix}"
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _upload_folder(root: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-", dir=root))


def remove_stale_uploads(root: str) -> list[Path]:
    """Remove the upload folders that a server process which no longer runs left in ``root`` (killed, say)."""
    import psutil

    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            match = re.fullmatch(rf"{UPLOAD_PREFIX}(\d+)-\w+", entry.name)
            if match and entry.is_dir(follow_symlinks=False) and not psutil.pid_exists(int(match.group(1))):
                remove_folder(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def create_app(config: ServeConfig, *, service: ModelService | None = None) -> FastAPI:
    """The FastAPI app of `birdcall serve`: the model opened now (unless ``service`` is given), the routes above.

    Raises:
        ParameterError, CheckpointError: the model cannot be opened.
    """
    if service is None:
        service = ModelService(config.model, backend=config.backend, threads=config.threads, jobs=config.jobs, queue=config.queue,
                               batch_size=config.batch_size, location=config.location())  # fmt: skip
    for warning in service.warnings:
        log.warning("%s", warning)
    root = config.tmp_dir or tempfile.gettempdir()
    Path(root).mkdir(parents=True, exist_ok=True)
    remove_stale_uploads(root)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.to_thread(service.close)

    app = FastAPI(title="birdcall", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Bird species in uploaded recordings, with the model and the detection tables of `birdcall analyze`.")  # fmt: skip
    app.state.service, app.state.config = service, config
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])  # fmt: skip
    _install_error_handlers(app)
    _install_page(app)
    app.include_router(_api(config, service, root))
    return app


def app_from_env() -> FastAPI:
    """:func:`create_app` of the config :meth:`ServeConfig.to_env` put in the environment (uvicorn's worker
    processes call this, each loading the model once)."""
    return create_app(ServeConfig.from_env())


def _install_error_handlers(app: FastAPI) -> None:
    for kind, status in _STATUS:
        headers = {"Retry-After": "5"} if status == 503 else None
        app.add_exception_handler(kind, lambda request, err, status=status, headers=headers: _error(status, str(err), headers))

    @app.exception_handler(BirdcallError)
    async def birdcall_error(request: Request, err: BirdcallError):  # a write failure, say: one line, the server goes on
        log.error("%s %s: %s", request.method, request.url.path, err)
        return _error(500, str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}" for e in err.errors()]
        return _error(422, "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return _error(err.status_code, str(err.detail), getattr(err, "headers", None))  # 404, 405...

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, err: ClientDisconnect):
        return _error(400, "the client closed the connection during the upload")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(err).__name__}); the server goes on")


def _install_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})  # fmt: skip

    try:
        import fastapi_offline
    except ImportError:  # the docs need the serve extra's fastapi-offline; the API and the page do not
        return
    app.mount("/docs-static", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="birdcall API", swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css", swagger_favicon_url="/docs-static/favicon.png")  # fmt: skip


def _api(config: ServeConfig, service: ModelService, root: str) -> APIRouter:
    async def require_key(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("x-api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if given is None and scheme.lower() == "bearer":
            given = token.strip()
        if not given or not secrets.compare_digest(given.encode("utf-8"), config.api_key.encode("utf-8")):
            raise HTTPException(401, "missing or wrong API key (send it in the X-API-Key header)", headers={"WWW-Authenticate": "Bearer"})

    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses={401: _ERRORS[401]})
    species = [schemas.Species(code=c, scientific_name=s, common_name=n) for c, s, n in
               zip(service.labels.codes, service.labels.scientific_names or ("",) * len(service.labels), service.labels.common_names or ("",) * len(service.labels))]  # fmt: skip

    @router.get("/health", response_model=schemas.HealthResponse, summary="Is the model loaded, how busy is this process")
    async def health() -> schemas.HealthResponse:
        return schemas.HealthResponse(status="ok", version=__version__, model_loaded=True, model=service.name, backend=service.backend,
                                      torch_imported="torch" in sys.modules, jobs=schemas.JobsLoad(**service.load()))  # fmt: skip

    @router.get("/species", response_model=schemas.SpeciesResponse, summary="The species the model knows, in output order")
    async def list_species() -> schemas.SpeciesResponse:
        return schemas.SpeciesResponse(count=len(species), species=species)

    @router.get("/model", response_model=schemas.ModelResponse, summary="The model: labels, front end, windows, licence")
    async def model() -> schemas.ModelResponse:
        card, features = service.card, service.features
        window = schemas.WindowSettings(sample_rate=features.sample_rate, clip_duration=features.clip_duration, default_hop=features.clip_duration, pad=features.pad)
        return schemas.ModelResponse(name=card.name, files=list(card.files), arch=card.arch, backbone=card.backbone, backend=service.backend,
                                     backend_note=service.backend_note, license=card.license, note=card.note, labels=species,
                                     features=jsonable_encoder(to_dict(features)), window=window)  # fmt: skip

    default = DetectionOptions()

    @router.post(
        "/analyze", response_model=schemas.AnalyzeResponse, summary="Detect species in an uploaded recording", openapi_extra={"requestBody": _UPLOAD_BODY},
        responses={**{k: v for k, v in _ERRORS.items() if k != 401}, 200: {"content": {"text/csv": {}, "text/plain": {}}}},
    )  # fmt: skip
    async def analyze(
        request: Request,
        min_confidence: Annotated[float, Query(ge=0.0, le=1.0, description="Lowest score reported as a detection.")] = default.min_confidence,
        top_k: Annotated[int | None, Query(ge=1, description="At most this many species per window.")] = None,
        hop: Annotated[float | None, Query(gt=0.0, description="Seconds between window starts (default: the clip duration; less overlaps).")] = None,
        include: Annotated[list[str] | None, Query(description="Report only these species codes (repeat or comma-separate).")] = None,
        exclude: Annotated[list[str] | None, Query(description="Never report these species codes.")] = None,
        format: Annotated[Literal["json", "csv", "raven"], Query(description="json, or a table as birdcall analyze writes it: csv (detections.csv) or raven (its selection table).")] = "json",
        spectrogram: Annotated[bool, Query(description="json: add the recording's spectrogram as a PNG data URI.")] = False,
        tables: Annotated[bool, Query(description="json: add both tables' text (csv, raven).")] = False,
        filename: Annotated[str | None, Query(max_length=1000, description="The file's name for a raw body (shown back, never used as a path).")] = None,
        lat: Annotated[float | None, Query(description="Latitude (-90..90): report only the species expected there (with lon; overrides the server's).")] = None,
        lon: Annotated[float | None, Query(description="Longitude (-180..180).")] = None,
        week: Annotated[int | None, Query(description="Week of the year, BirdNET's 1-48 (four per month), or -1: all year.")] = None,
        location_mode: Annotated[Literal["filter", "weight"] | None, Query(description="filter: unexpected species removed; weight: their scores scaled down.")] = None,
    ):  # fmt: skip
        detection = DetectionOptions(min_confidence=min_confidence, top_k=top_k, include=_codes(include), exclude=_codes(exclude))
        service.check_options(detection, hop)  # before any byte of the upload is read
        location = service.location_filter(lat=lat, lon=lon, week=week, mode=location_mode)
        job = Job(deadline=time.monotonic() + config.timeout)
        folder = _upload_folder(root)
        future = None
        try:
            try:
                upload = await asyncio.wait_for(receive_upload(request, folder, max_bytes=config.max_upload_bytes, filename=filename), config.timeout)
            except asyncio.TimeoutError:
                raise AnalysisTimeout(f"the upload took longer than the server's time limit ({config.timeout:g} s)") from None
            wanted = (format,) if format != "json" else (TABLE_FORMATS if tables else ())
            future = service.submit(upload.path, name=upload.name, detection=detection, hop=hop, job=job,
                                    with_spectrogram=spectrogram and format == "json", tables=wanted, location=location)  # fmt: skip
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(0.0, job.deadline - time.monotonic()))
            except asyncio.TimeoutError:
                job.cancel.set()
                raise AnalysisTimeout(f"the analysis took longer than the server's time limit ({config.timeout:g} s)") from None
        finally:
            if future is None:
                remove_folder(folder)
            else:  # the job may still be reading its file: the folder goes when the job is over (at once if it is)
                future.add_done_callback(lambda _: remove_folder(folder))
        if format != "json":
            media, suffix = _MEDIA[format]
            return Response(result.tables[format], media_type=media, headers={"Content-Disposition": _attachment(result.name, suffix)})
        return _analysis_json(result, service, detection, hop, location)

    return router


def _analysis_json(result, service: ModelService, detection: DetectionOptions, hop: float | None, location=None) -> schemas.AnalyzeResponse:
    frame = result.detections
    detections = [schemas.Detection(start_time=s, end_time=e, code=c, scientific_name=sn, common_name=cn, confidence=p) for s, e, c, sn, cn, p in
                  zip(frame["start_time"].tolist(), frame["end_time"].tolist(), frame["code"].tolist(), frame["scientific_name"].tolist(),
                      frame["common_name"].tolist(), frame["confidence"].to_numpy(np.float32).astype(str).astype(float).tolist())]  # fmt: skip
    picture = None
    if result.spectrogram is not None:
        s = result.spectrogram
        picture = schemas.SpectrogramImage(png="data:image/png;base64," + base64.b64encode(s.png).decode("ascii"), duration=s.duration, fmax=s.fmax,
                                           width=s.width, height=s.height)  # fmt: skip
    options = schemas.Options(min_confidence=detection.min_confidence, top_k=detection.top_k, hop=hop or service.features.clip_duration,
                              include=list(detection.include) if detection.include is not None else None,
                              exclude=list(detection.exclude) if detection.exclude is not None else None,
                              location=schemas.LocationFilter(**{k: v for k, v in location.settings.items() if k in schemas.LocationFilter.model_fields},
                                                              expected=len(location.expected)) if location is not None else None)  # fmt: skip
    return schemas.AnalyzeResponse(file=result.name, duration=result.duration, windows=result.windows, model=service.name, backend=service.backend,
                                   options=options, detections=detections, elapsed=round(result.elapsed, 6), spectrogram=picture,
                                   tables=schemas.Tables(**result.tables) if result.tables else None)  # fmt: skip
