"""`birdcall serve`: an HTTP service and a web page that detect bird species in uploaded recordings.

``ServeConfig`` (the settings) imports nothing beyond birdcall; the rest needs the ``serve`` extra (FastAPI,
uvicorn, python-multipart; pinned in requirements.lock) and is imported on first use:

* :mod:`birdcall.serve.service`: the model, loaded once per process, and the bounded pool of analysis jobs;
* :mod:`birdcall.serve.uploads`: uploads streamed to a temporary file under a size limit;
* :mod:`birdcall.serve.spectrogram`: a PNG spectrogram of a recording of any length;
* :mod:`birdcall.serve.schemas`: the JSON bodies (pydantic);
* :mod:`birdcall.serve.app`: the FastAPI app (``create_app``), its routes and the page in ``static/``;
* :mod:`birdcall.serve.server`: ``serve(config)``, uvicorn with one or several worker processes.
"""

from .._lazy import install
from .config import API_KEY_ENV as API_KEY_ENV
from .config import ServeConfig as ServeConfig

_LAZY = {
    "ModelService": "service",
    "create_app": "app",
    "missing_packages": "server",
    "serve": "server",
}
__all__ = ["API_KEY_ENV", "ServeConfig"] + list(_LAZY)
install(__name__, _LAZY)
