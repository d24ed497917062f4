"""The routes of `birdcall serve` through FastAPI's TestClient (in process; the real server is in
test_server_integration.py): answers equal to `birdcall analyze`, the errors and the safety rules."""

from __future__ import annotations

import io
import threading

import pandas as pd
import pytest
from typer.testing import CliRunner

from birdcall.cli import app as cli
from birdcall.infer.detections import DETECTION_COLUMNS

from .conftest import LABELS, StandInScorer, uploads_left, write_recording


def analyze_cli(tmp_path, model, audio, *args) -> tuple:
    """``birdcall analyze`` on one file: (detections.csv as text, the file's Raven table, errors.csv frame)."""
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(cli, ["analyze", "--quiet", "--model", str(model), "--out", str(out), *map(str, args), str(audio)])
    assert result.exit_code in (0, 1), result.output
    raven = out / "raven" / f"{audio.stem}.selections.txt"
    return (out / "detections.csv").read_text(), raven.read_text() if raven.exists() else None, pd.read_csv(out / "errors.csv")


def upload(client, path, *, name=None, params="", **kw):
    with open(path, "rb") as handle:
        return client.post(f"/v1/analyze{params}", files={"file": (name or path.name, handle, "audio/wav")}, **kw)


# ------------------------------------------------------------------------------------------------ good requests


def test_info_routes(make_client):
    client = make_client()
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["model_loaded"] and health["model"] == "tiny.onnx" and health["backend"] == "onnx"
    assert health["jobs"] == {"running": 0, "waiting": 0, "capacity": 18}
    species = client.get("/v1/species").json()
    assert species["count"] == 3 and species["species"][1] == {"code": "sp_b", "scientific_name": "Avis b", "common_name": "B bird"}
    model = client.get("/v1/model").json()
    assert (model["name"], model["files"], model["arch"], model["license"]) == ("tiny.onnx", ["tiny.onnx"], "cnn", None)
    assert model["features"]["n_mels"] == 32 and model["window"] == {"sample_rate": 32000, "clip_duration": 1.0, "default_hop": 1.0, "pad": "zero"}
    assert [s["code"] for s in model["labels"]] == list(LABELS.codes)


@pytest.mark.parametrize("args", [(), ("--min-confidence", "0", "--hop", "0.5"), ("--min-confidence", "0.3", "--top-k", "1", "--exclude", "EXCLUDE")])
def test_analyze_tables_equal_what_birdcall_analyze_writes(make_client, onnx_model, tmp_path, args):
    audio = write_recording(tmp_path / "dawn chorus.flac", 4.2)
    (tmp_path / "exclude.txt").write_text("sp_c\n")
    args = tuple(str(tmp_path / "exclude.txt") if a == "EXCLUDE" else a for a in args)
    expected_csv, expected_raven, _ = analyze_cli(tmp_path, onnx_model, audio, *args)
    names = {"--min-confidence": "min_confidence", "--hop": "hop", "--top-k": "top_k", "--exclude": "exclude"}
    query = "&".join(f"{names[k]}={'sp_c' if k == '--exclude' else v}" for k, v in zip(args[::2], args[1::2]))
    client = make_client()

    csv = upload(client, audio, params=f"?format=csv&{query}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="dawn chorus.detections.csv"' in csv.headers["content-disposition"]
    assert csv.text == expected_csv.replace(str(audio), "dawn chorus.flac")  # the CLI's file column is the path it was given
    raven = upload(client, audio, params=f"?format=raven&{query}")
    assert raven.status_code == 200 and raven.text == expected_raven

    body = upload(client, audio, params=f"?{query}&tables=true").json()
    table = pd.read_csv(io.StringIO(expected_csv))
    assert body["file"] == "dawn chorus.flac" and body["duration"] == pytest.approx(4.2) and body["model"] == "tiny.onnx"
    assert body["windows"] == (8 if "--hop" in args else 5) and body["options"]["hop"] == (0.5 if "--hop" in args else 1.0)
    assert [[d[c] for c in DETECTION_COLUMNS[1:]] for d in body["detections"]] == table[list(DETECTION_COLUMNS[1:])].values.tolist()
    assert body["tables"]["csv"] == csv.text and body["tables"]["raven"] == raven.text
    assert body["spectrogram"] is None
    assert uploads_left(tmp_path) == []


def test_raw_body_options_and_spectrogram(make_client, recording):
    client = make_client()
    body = client.post("/v1/analyze?filename=site%201/rec.wav&min_confidence=0&include=sp_a,sp_b&include=sp_c&exclude=sp_b&top_k=1&spectrogram=true",
                       content=recording.read_bytes(), headers={"content-type": "audio/wav"}).json()  # fmt: skip
    assert body["file"] == "rec.wav" and body["options"]["include"] == ["sp_a", "sp_b", "sp_c"] and body["options"]["exclude"] == ["sp_b"]
    assert len(body["detections"]) == 4 and {d["code"] for d in body["detections"]} <= {"sp_a", "sp_c"}  # top 1 of 2 for each of 4 windows
    picture = body["spectrogram"]
    assert picture["png"].startswith("data:image/png;base64,iVBORw0KGgo") and picture["duration"] == pytest.approx(3.5)
    assert picture["width"] == 175 and picture["height"] == 129 and picture["fmax"] == pytest.approx(8062.5)  # 50 px/s; 0-8 kHz in 62.5-Hz rows


# ------------------------------------------------------------------------------------------------ bad requests


def test_corrupt_and_non_audio_files_get_the_reason_the_cli_gives(make_client, onnx_model, tmp_path):
    fake = tmp_path / "fake.ogg"
    fake.write_text("this is not audio")
    cut = write_recording(tmp_path / "cut.flac", 3.0)
    cut.write_bytes(cut.read_bytes()[:2000])
    client = make_client()
    for path in (fake, cut):
        _, _, errors = analyze_cli(tmp_path / path.stem, onnx_model, path)
        response = upload(client, path)
        assert response.status_code == 422, response.text
        assert response.json() == {"detail": f"{path.name}: {errors['reason'][0]}"}
    empty = client.post("/v1/analyze?filename=empty.wav", content=b"")
    assert empty.status_code == 422 and empty.json()["detail"] == "empty.wav: empty file (0 bytes)"
    assert uploads_left(tmp_path) == []


@pytest.mark.parametrize(("query", "detail"), [
    ("min_confidence=1.5", "min_confidence: Input should be less than or equal to 1"),
    ("top_k=0", "top_k: Input should be greater than or equal to 1"),
    ("hop=-1", "hop: Input should be greater than 0"),
    ("include=sp_a,nope", "include: unknown species code(s) ['nope'] (the model knows 3 codes)"),
    ("format=xml", "format: Input should be 'json', 'csv' or 'raven'"),
])  # fmt: skip
def test_bad_options_are_one_line_422_before_the_upload_is_read(make_client, tmp_path, recording, query, detail):
    response = upload(make_client(), recording, params=f"?{query}")
    assert response.status_code == 422 and response.json() == {"detail": detail}
    assert uploads_left(tmp_path) == []


def test_malformed_uploads_are_400(make_client, tmp_path):
    client = make_client()
    no_file = client.post("/v1/analyze", data={"note": "hello"}, files={"other": (None, "x")})
    assert no_file.status_code == 400 and "no file" in no_file.json()["detail"]
    two = client.post("/v1/analyze", files=[("file", ("a.wav", b"RIFF")), ("file", ("b.wav", b"RIFF"))])
    assert two.status_code == 400 and two.json() == {"detail": "send one file per request"}
    cut = client.post("/v1/analyze", content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF....",
                      headers={"content-type": "multipart/form-data; boundary=xyz"})  # fmt: skip
    assert cut.status_code == 400 and cut.json() == {"detail": "the multipart body ends inside its file part"}
    assert uploads_left(tmp_path) == []


def test_oversize_uploads_are_413_from_their_declared_length(make_client, tmp_path, recording):
    client = make_client(max_upload_mb=0.01)  # 10 kB; the recording is 224 kB
    for response in (upload(client, recording), client.post("/v1/analyze", content=recording.read_bytes())):
        assert response.status_code == 413
        assert response.json() == {"detail": "the upload is larger than this server accepts (0.01 MB; see --max-upload-mb)"}
    assert uploads_left(tmp_path) == []


def test_unknown_routes_and_methods_are_json(make_client):
    client = make_client()
    assert client.get("/v1/nothing").json() == {"detail": "Not Found"}
    assert client.get("/v1/analyze").status_code == 405


# ------------------------------------------------------------------------------------------------ safety


def test_every_v1_route_needs_the_key_the_page_does_not(make_client, tmp_path, recording):
    client = make_client(api_key="s3cret")
    routes = [("get", "/v1/health"), ("get", "/v1/species"), ("get", "/v1/model"), ("post", "/v1/analyze")]
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        for method, route in routes:
            response = getattr(client, method)(route, headers=headers, **({"content": recording.read_bytes()} if method == "post" else {}))
            assert response.status_code == 401, (route, headers)
            assert response.json() == {"detail": "missing or wrong API key (send it in the X-API-Key header)"}
            assert response.headers["www-authenticate"] == "Bearer"
    assert uploads_left(tmp_path) == []  # a refused upload is never written
    for headers in ({"X-API-Key": "s3cret"}, {"Authorization": "Bearer s3cret"}):
        assert client.get("/v1/health", headers=headers).status_code == 200
        assert upload(client, recording, headers=headers).status_code == 200
    assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200


def test_cors_is_off_unless_origins_are_given(make_client):
    origin = {"Origin": "https://example.org"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    closed = make_client()
    assert "access-control-allow-origin" not in closed.get("/v1/health", headers=origin).headers
    assert closed.options("/v1/analyze", headers=preflight).status_code == 405
    opened = make_client(cors_origins=("https://example.org",))
    assert opened.get("/v1/health", headers=origin).headers["access-control-allow-origin"] == "https://example.org"
    assert opened.options("/v1/analyze", headers=preflight).status_code == 200
    assert "access-control-allow-origin" not in opened.get("/v1/health", headers={"Origin": "https://elsewhere.org"}).headers


@pytest.mark.parametrize("name", ["../../../escape.wav", "/etc/passwd.wav", "..\\..\\win.wav", "a/b/../../c.wav", "bad\r\nname\x00.wav", "..", ""])
def test_client_file_names_are_never_paths(make_client, tmp_path, recording, name):
    before = sorted(p for p in tmp_path.parent.rglob("*") if "uploads" not in p.parts)
    client = make_client()
    multipart = upload(client, recording, name=name)
    raw = client.post("/v1/analyze", params={"filename": name}, content=recording.read_bytes())
    for response in (multipart, raw):
        assert response.status_code == 200, response.text
        shown = response.json()["file"]
        assert "/" not in shown and "\\" not in shown and "\n" not in shown and "\x00" not in shown and shown not in ("", "..")
    assert sorted(p for p in tmp_path.parent.rglob("*") if "uploads" not in p.parts) == before
    assert uploads_left(tmp_path) == []


def test_a_request_past_the_time_limit_gets_504_and_its_analysis_stops(make_client, tmp_path):
    scorer = StandInScorer(delay=0.25)
    client = make_client(scorer, timeout=1.0, batch_size=1)
    audio = write_recording(tmp_path / "long.wav", 30.0)  # 30 windows of 0.25 s each: 7.5 s
    response = upload(client, audio)
    assert response.status_code == 504
    assert response.json() == {"detail": "the analysis took longer than the server's time limit (1 s)"}
    for _ in range(50):  # the job stops at its next model call, then its folder goes
        if not uploads_left(tmp_path) and client.get("/v1/health").json()["jobs"]["running"] == 0:
            break
        threading.Event().wait(0.1)
    assert uploads_left(tmp_path) == [] and scorer.calls <= 5


def test_a_full_queue_gets_503_and_the_server_goes_on(make_client, tmp_path):
    scorer = StandInScorer(delay=0.3)
    client = make_client(scorer, jobs=1, queue=0, batch_size=1)
    audio = write_recording(tmp_path / "rec.wav", 3.0)
    first = {}
    worker = threading.Thread(target=lambda: first.update(response=upload(client, audio)))
    worker.start()
    for _ in range(100):
        if client.get("/v1/health").json()["jobs"]["running"]:
            break
        threading.Event().wait(0.02)
    busy = upload(client, audio)
    worker.join()
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert busy.json() == {"detail": "the server is busy (1 requests in progress); try again shortly"}
    assert first["response"].status_code == 200 and len(first["response"].json()["detections"]) == 3 * 2  # 0.9 and 0.5 pass 0.1
    assert upload(client, audio).status_code == 200
    assert uploads_left(tmp_path) == []


def test_concurrent_requests_share_the_model_one_call_at_a_time(make_client, tmp_path):
    scorer = StandInScorer(delay=0.01)
    client = make_client(scorer, jobs=2, queue=8, batch_size=2)
    files = [write_recording(tmp_path / f"r{i}.wav", 2.0 + i, seed=i) for i in range(6)]
    results = {}

    def post(i):
        results[i] = upload(client, files[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i].status_code for i in range(6)] == [200] * 6
    assert [results[i].json()["windows"] for i in range(6)] == [2, 3, 4, 5, 6, 7]
    assert scorer.most_active == 1  # the scorer is never called by two jobs at once
    assert uploads_left(tmp_path) == []


def test_an_unexpected_failure_is_500_and_the_next_request_works(make_client, tmp_path, recording):
    scorer = StandInScorer(fail=True)
    client = make_client(scorer, raise_server_exceptions=False)
    response = upload(client, recording)
    assert response.status_code == 500 and response.json() == {"detail": "internal error (RuntimeError); the server goes on"}
    scorer.fail = False
    assert upload(client, recording).status_code == 200
    assert uploads_left(tmp_path) == []


def test_stale_upload_folders_of_dead_processes_are_removed_at_start(make_client, tmp_path):
    stale = tmp_path / "uploads" / "birdcall-serve-999999999-abcdef"
    mine = tmp_path / "uploads" / "birdcall-serve-1-abcdef"  # pid 1 is alive: not ours to remove
    for folder in (stale, mine):
        folder.mkdir(parents=True)
        (folder / "upload.wav").write_bytes(b"x")
    make_client()
    assert not stale.exists() and mine.exists()


# ------------------------------------------------------------------------------------------------ page and docs


def test_the_page_and_the_docs_are_served_by_the_package(make_client):
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/analyze", "/v1/species", "/v1/model", "/v1/health"} <= set(schema["paths"])
    analyze = schema["paths"]["/v1/analyze"]["post"]
    assert {"multipart/form-data", "application/octet-stream"} <= set(analyze["requestBody"]["content"])
    assert {"200", "400", "401", "413", "422", "503", "504"} <= set(analyze["responses"])
    assert analyze["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AnalyzeResponse"}
