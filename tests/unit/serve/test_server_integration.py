"""A real `birdcall serve` (uvicorn, in a subprocess, on a free port of 127.0.0.1) with an ONNX model: every route
good and bad, an upload cut off while it streams, the API key, concurrent clients, torch never imported, every
upload's temporary folder removed, several worker processes, and a clean stop on SIGTERM."""

from __future__ import annotations

import select
import signal
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import requests

from birdcall.testing.server import ServerProcess

from .conftest import LABELS, write_recording

pytestmark = pytest.mark.integration
KEY = "integration-key"


@contextmanager
def running_server(model, tmp_dir, *args):
    """``birdcall serve`` in a subprocess until the block ends; then it must have stopped cleanly on SIGTERM."""
    server = ServerProcess(model, *map(str, args), tmp_dir=tmp_dir, api_key=KEY, log=tmp_dir.parent / f"server-{tmp_dir.name}.log")
    with server:
        yield server.url
    output = server.output()
    assert server.returncode in (0, -signal.SIGTERM), output[-3000:]  # uvicorn re-raises the signal once it has shut down
    assert "Application shutdown complete" in output or "Stopping parent process" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


@pytest.fixture(scope="module")
def server(onnx_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    uploads = root / "uploads"
    with running_server(onnx_model, uploads, "--max-upload-mb", "1", "--jobs", "2", "--queue", "16") as url:
        yield url, uploads, root


def post(url, path, *, params=None, key=KEY, **kw):
    with open(path, "rb") as handle:
        return requests.post(f"{url}/v1/analyze", params=params, files={"file": (path.name, handle, "audio/wav")}, headers={"X-API-Key": key},
                             timeout=120, **kw)  # fmt: skip


def test_every_route_good_and_bad(server, tmp_path):
    url, uploads, _ = server
    auth = {"X-API-Key": KEY}
    good = write_recording(tmp_path / "good.wav", 3.5)
    fake = tmp_path / "fake.ogg"
    fake.write_bytes(b"OggS but not really")

    health = requests.get(f"{url}/v1/health", headers=auth, timeout=10).json()
    assert health["model"] == "tiny.onnx" and health["backend"] == "onnx" and health["torch_imported"] is False
    assert requests.get(f"{url}/v1/species", headers=auth, timeout=10).json()["count"] == len(LABELS)
    assert requests.get(f"{url}/v1/model", headers=auth, timeout=10).json()["labels"][0]["code"] == "sp_a"
    body = post(url, good, params={"min_confidence": 0, "spectrogram": "true"}).json()
    assert body["windows"] == 4 and len(body["detections"]) == 4 * len(LABELS) and body["spectrogram"]["width"] == 175
    csv = post(url, good, params={"format": "csv", "min_confidence": 0})
    assert csv.status_code == 200 and csv.text.count("\n") == 1 + 4 * len(LABELS)
    raw = requests.post(f"{url}/v1/analyze", params={"filename": "raw.wav"}, data=good.read_bytes(), headers=auth, timeout=60)
    assert raw.status_code == 200 and raw.json()["file"] == "raw.wav"

    corrupt = post(url, fake)
    assert corrupt.status_code == 422 and corrupt.json()["detail"].startswith("fake.ogg: ")
    big = write_recording(tmp_path / "big.wav", 20.0)  # 1.3 MB over the 1-MB limit
    assert post(url, big).status_code == 413
    for method, route in (("get", "/v1/health"), ("get", "/v1/species"), ("get", "/v1/model"), ("post", "/v1/analyze")):
        response = getattr(requests, method)(f"{url}{route}", headers={"X-API-Key": "wrong"}, timeout=10)
        assert response.status_code == 401 and response.json()["detail"].startswith("missing or wrong API key")
    assert requests.get(f"{url}/", timeout=10).status_code == 200 and requests.get(f"{url}/docs", timeout=10).status_code == 200
    assert requests.get(f"{url}/v1/health", headers=auth, timeout=10).json()["torch_imported"] is False
    assert list(uploads.iterdir()) == []


def test_an_endless_upload_is_cut_off_at_the_limit(server):
    url, uploads, _ = server
    host, port = url.removeprefix("http://").split(":")
    total, chunk = 50 * 1024 * 1024, b"\0" * 65536
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /v1/analyze?filename=big.wav HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Type: audio/wav\r\n\r\n".encode())  # fmt: skip
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        while b"}" not in answer:  # the JSON body may come in a packet of its own
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        answer = answer.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413 "), answer[:300]
    assert '"detail":"the upload is larger than this server accepts (1 MB; see --max-upload-mb)"' in answer
    assert sent < total / 4  # refused while streaming: most of the 50 MB was never sent
    time.sleep(0.5)
    assert list(uploads.iterdir()) == []


def test_concurrent_clients_with_corrupt_uploads_among_them(server, tmp_path):
    url, uploads, _ = server
    files = [write_recording(tmp_path / f"r{i}.wav", 2.0 + 1.5 * i, seed=i) for i in range(6)]  # under 1 MB each
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(files[0].read_bytes()[:50])
    expected = {f.name: post(url, f, params={"min_confidence": 0.2}).json()["detections"] for f in files}  # one at a time
    jobs = [files[i % len(files)] for i in range(14)] + [corrupt, corrupt]
    results: dict[int, requests.Response] = {}

    def client(index: int) -> None:
        results[index] = post(url, jobs[index], params={"min_confidence": 0.2})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for index, path in enumerate(jobs):
        response = results[index]
        if path is corrupt:
            assert response.status_code == 422 and response.json()["detail"].startswith("corrupt.wav: "), response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["detections"] == expected[path.name]  # the same answer as alone
    health = requests.get(f"{url}/v1/health", headers={"X-API-Key": KEY}, timeout=10).json()
    assert health["jobs"] == {"running": 0, "waiting": 0, "capacity": 18} and health["torch_imported"] is False
    assert list(uploads.iterdir()) == []


def test_several_worker_processes_each_with_the_model(onnx_model, tmp_path):
    audio = write_recording(tmp_path / "rec.wav", 2.0)
    with running_server(onnx_model, tmp_path / "uploads", "--workers", "2") as url:
        answers = [post(url, audio, params={"min_confidence": 0}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert all(a.json()["detections"] == answers[0].json()["detections"] for a in answers)
        assert requests.get(f"{url}/v1/health", headers={"X-API-Key": KEY}, timeout=10).json()["torch_imported"] is False
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_stalled_upload_gets_504_at_the_time_limit(onnx_model, tmp_path):
    with running_server(onnx_model, tmp_path / "uploads", "--timeout", "1.5") as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST /v1/analyze?filename=slow.wav HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\nContent-Length: 100000\r\n\r\nRIFF".encode())
            started = time.monotonic()
            answer = b""
            while b"}" not in answer:  # the client sends nothing more
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 504 "), answer[:300]
        assert b"the upload took longer than the server's time limit (1.5 s)" in answer and 1.0 < waited < 10.0
        time.sleep(0.3)
        assert list((tmp_path / "uploads").iterdir()) == []
        assert requests.get(f"{url}/v1/health", headers={"X-API-Key": KEY}, timeout=10).status_code == 200  # the server goes on


def test_an_openvino_model_is_served_without_torch(onnx_model, tmp_path):
    pytest.importorskip("openvino")
    from birdcall.export import export_openvino

    model = export_openvino(onnx_model, tmp_path / "tiny.xml")
    audio = write_recording(tmp_path / "rec.wav", 3.0)
    with running_server(model, tmp_path / "uploads") as url:
        body = post(url, audio, params={"min_confidence": 0}).json()
        assert body["windows"] == 3 and body["backend"] == "openvino" and body["model"] == "tiny.xml"
        health = requests.get(f"{url}/v1/health", headers={"X-API-Key": KEY}, timeout=10).json()
        assert health["torch_imported"] is False
