"""A real `birdcall serve` in a subprocess on a free port of 127.0.0.1, for tests and benchmarks.

Example:
    >>> with ServerProcess("model.onnx", tmp_dir="uploads", api_key="k") as server:  # doctest: +SKIP
    ...     server.url  # "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..types import Pathlike

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m birdcall.cli serve --model MODEL --port <free> [args]`` from ``start`` (or ``with``) to ``stop``.

    Args:
        model: the model to serve.
        *args: more ``birdcall serve`` arguments.
        tmp_dir: ``--tmp-dir`` (None: the server's default).
        api_key: given in ``BIRDCALL_API_KEY`` (kept out of the command line), and sent by :meth:`get_json`.
        log: file the server's output goes to (None: a new temporary file).
        startup_timeout: seconds to wait for ``/v1/health``.
    """

    def __init__(self, model: Pathlike, *args: str, tmp_dir: Pathlike | None = None, api_key: str | None = None, log: Pathlike | None = None,
                 startup_timeout: float = 120.0):  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.command = [sys.executable, "-m", "birdcall.cli", "serve", "--model", str(model), "--port", str(self.port), *map(str, args)]
        if tmp_dir is not None:
            self.command += ["--tmp-dir", str(tmp_dir)]
        if log is None:
            import tempfile

            log = Path(tempfile.mkstemp(prefix=f"birdcall-serve-{self.port}-", suffix=".log")[1])
        self.log = Path(log)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> ServerProcess:
        env = dict(os.environ)
        env.pop("BIRDCALL_API_KEY", None)
        if self.api_key is not None:
            env["BIRDCALL_API_KEY"] = self.api_key
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"birdcall serve exited with {self.process.returncode}: {self.output()[-3000:]}")
            try:
                self.get_json("/v1/health", timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"birdcall serve did not answer within {self.startup_timeout:g} s: {self.output()[-3000:]}")
            time.sleep(0.2)

    def get_json(self, route: str, *, timeout: float = 30.0):
        """``GET`` a route (with the API key) and decode its JSON body."""
        request = urllib.request.Request(self.url + route, headers={"X-API-Key": self.api_key} if self.api_key else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait (SIGKILL after ``timeout``); returns the exit code (uvicorn re-raises SIGTERM once it
        has shut down cleanly, so a clean stop is 0 or ``-SIGTERM``)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode
        return self.returncode

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
