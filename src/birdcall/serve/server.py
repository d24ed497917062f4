"""Running the app under uvicorn: one process, or ``workers`` processes that each load the model once."""

from __future__ import annotations

import importlib.util
import os

from ..errors import MissingExtraError
from .config import ServeConfig

__all__ = ["missing_packages", "serve"]

PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def missing_packages() -> list[str]:
    """The packages of the ``serve`` extra that are not installed (found without importing them)."""
    return [name for module, name in PACKAGES.items() if importlib.util.find_spec(module) is None]


def serve(config: ServeConfig, *, on_ready=None) -> None:
    """Serve ``config.model`` on ``config.host:config.port`` until interrupted (Ctrl-C, SIGTERM).

    With one worker the model is opened here, before the socket is bound, so a bad model fails at once; with
    several, uvicorn starts ``workers`` processes and each opens it (:func:`~birdcall.serve.app.app_from_env`).

    Args:
        config: the settings.
        on_ready: called with the app (one worker) or None (several) just before uvicorn starts.

    Raises:
        MissingExtraError: FastAPI, uvicorn or python-multipart is not installed.
        ParameterError, CheckpointError: the model cannot be opened (one worker).
    """
    missing = missing_packages()
    if missing:
        raise MissingExtraError(f"birdcall serve needs {', '.join(missing)}: pip install 'birdcall[serve]' (make setup installs it)")
    import uvicorn

    common = {"host": config.host, "port": config.port, "log_level": "info", "timeout_graceful_shutdown": 30}
    if config.workers == 1:
        from .app import create_app

        app = create_app(config)
        if on_ready is not None:
            on_ready(app)
        uvicorn.run(app, **common)
        return
    os.environ.update(config.to_env())
    if on_ready is not None:
        on_ready(None)
    uvicorn.run("birdcall.serve.app:app_from_env", factory=True, workers=config.workers, **common)
