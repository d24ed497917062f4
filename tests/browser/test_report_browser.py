"""The evaluation report in a real headless browser (Debian's chromium, driven over the DevTools protocol).

A tiny cross-validated run is trained on generated data and evaluated with ``birdcall evaluate --run``; the
report is opened from disk in chromium, which must log no console error or exception, decode every image and
load the metadata of every audio element. A full-page screenshot is saved beside the report.

Chromium is driven through ``--remote-debugging-pipe`` (NUL-separated JSON messages on fds 3 and 4), so no
websocket library is needed. Without /usr/bin/chromium the test is skipped, except in CI (``CI=true``), where
it fails: ``make test`` installs chromium first (``make browser``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of the chromium binary; checked before the report is built, so a skip costs nothing."""
    found = next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None) or shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (make browser installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class DevTools:
    """A minimal DevTools-protocol client over chromium's ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: Path, *, timeout: float = 60.0):
        self.timeout = timeout
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Close-on-exec copies at fd >= 10, so that moving them to 3 and 4 never overwrites one with the other.
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w))
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        self.log = profile.parent / "chromium.log"
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        # posix_spawn wires the pipes without running Python in the child (safe with torch's threads around):
        # chromium reads commands on fd 3 and writes replies on fd 4.
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, log, 2),
                   (os.POSIX_SPAWN_DUP2, child_in, 3), (os.POSIX_SPAWN_DUP2, child_out, 4)]  # fmt: skip
        try:
            self.pid = os.posix_spawn(binary, args, dict(os.environ), file_actions=actions)
        finally:
            for fd in (child_in, child_out, devnull, log):
                os.close(fd)
        self._write, self._read = to_chrome_w, from_chrome_r
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("no message from chromium in time")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe: {self.log.read_text(errors='replace')[-2000:]}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        deadline = time.monotonic() + 20
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self._write)
        os.close(self._read)


CHECK_PAGE = """
(async () => {
  const images = [];
  for (const img of Array.from(document.images)) {
    let error = "";
    try { await img.decode(); } catch (e) { error = String(e); }
    images.push({alt: img.alt, width: img.naturalWidth, height: img.naturalHeight, error});
  }
  const audios = [];
  for (const audio of Array.from(document.querySelectorAll("audio"))) {
    const src = audio.currentSrc || audio.src || "";
    const mime = (src.match(/^data:([^;,]+)/) || [null, ""])[1];
    const loaded = await new Promise(resolve => {
      if (audio.readyState >= 1) { resolve(true); return; }
      audio.addEventListener("loadedmetadata", () => resolve(true), {once: true});
      audio.addEventListener("error", () => resolve(false), {once: true});
      setTimeout(() => resolve(audio.readyState >= 1), 15000);
    });
    audios.push({mime, canPlay: audio.canPlayType(mime), loaded, duration: audio.duration,
                 error: audio.error ? audio.error.code : null, readyState: audio.readyState});
  }
  const links = Array.from(document.querySelectorAll("[src], [href]")).map(e => e.getAttribute("src") || e.getAttribute("href"));
  return {images, audios, links, title: document.title, height: document.documentElement.scrollHeight};
})()
"""


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(f"console.{params['type']}: {[a.get('value', a.get('description')) for a in params.get('args', [])]}")
        elif method == "Runtime.exceptionThrown":
            errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')} {params.get('exceptionDetails', {}).get('exception', {}).get('description', '')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url', '')})")
    return errors


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """``birdcall evaluate --run RUN --data DATA`` on a 2-fold, 1-epoch run of a tiny generated data set."""
    from birdcall.cli import app
    from birdcall.data import read_clip_table
    from birdcall.features import FeatureConfig
    from birdcall.synth import make_dataset
    from birdcall.train import TrainConfig, fit_folds

    root = tmp_path_factory.mktemp("browser")
    data, run, out = root / "data", root / "run", root / "report"
    make_dataset(data, num_species=4, seed=3, clips_per_species=4, num_background=1, num_soundscapes=0, audio_format="wav")
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=5.0)
    config = TrainConfig(model="test_cnn", features=features, epochs=1, folds=2, batch_size=4, threads=1,
                         augment={"background_noise_p": 0.0}, data={"mix_p": 0.0})
    fit_folds(read_clip_table(data), config, run, show_progress=False)
    result = CliRunner().invoke(app, ["evaluate", "--run", str(run), "--data", str(data), "--out", str(out), "--gallery-size", "3"])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def load_in_chromium(chromium: str, page: Path, tmp_path: Path) -> tuple[dict, list[str], Path]:
    """Open ``page`` in headless chromium: what :data:`CHECK_PAGE` found, the console errors, a full-page screenshot."""
    browser = DevTools(chromium, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        found = browser.send("Runtime.evaluate", {"expression": CHECK_PAGE, "awaitPromise": True, "returnByValue": True}, session=session)
        assert "exceptionDetails" not in found, found
        result = found["result"]["value"]
        height = min(int(result["height"]), 16000)
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                       "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}, session=session)  # fmt: skip
        screenshot = tmp_path / "page.png"
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        time.sleep(0.2)  # let late console events arrive
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        browser.close()
    return result, _console_errors(browser.events), screenshot


def test_report_loads_in_headless_chromium(chromium, report, tmp_path):
    text = report.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text), "the report must not link outside itself"
    page, errors, screenshot = load_in_chromium(chromium, report, tmp_path)

    assert errors == []
    assert page["title"].startswith("birdcall evaluation")
    assert len(page["images"]) == text.count("<img ") >= 7 + 6  # 7 figures, 3 false positives + 3 false negatives
    assert [img for img in page["images"] if img["error"] or img["width"] == 0 or img["height"] == 0] == []
    assert len(page["audios"]) == text.count("<audio ") == 6
    for audio in page["audios"]:
        assert audio["mime"] == "audio/wav" and audio["canPlay"] in ("maybe", "probably"), audio
        assert audio["loaded"] and audio["error"] is None and abs(audio["duration"] - 5.0) < 0.01, audio
    assert all(link.startswith(("data:", "#")) for link in page["links"]), [link[:80] for link in page["links"] if not link.startswith(("data:", "#"))]
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(screenshot, report.parent / "screenshot.png")


def test_search_page_loads_in_headless_chromium(chromium, tmp_path):
    """``birdcall search --html``'s page (written from a hits table, no model): every picture decodes, every clip
    loads with its window's length, the missing source is a placeholder, nothing links outside the page."""
    import numpy as np
    import pandas as pd

    from birdcall.audio import write_audio
    from birdcall.eval.search_page import write_search_page
    from birdcall.features import FeatureConfig
    from birdcall.testing.signals import tone

    features = FeatureConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32, fmax=8000.0, clip_duration=1.0)
    parts = [tone(frequency_hz=f, duration=1.0, sample_rate=16_000, amplitude=0.3) for f in (500.0, 1000.0, 2000.0)]
    long = write_audio(tmp_path / "<script>x.wav", np.concatenate(parts), 16_000)
    query = write_audio(tmp_path / "query.wav", parts[1], 16_000)
    hits = pd.DataFrame({"file": [str(long), str(tmp_path / "gone.wav"), str(long)], "start_time": [1.0, 0.0, 2.0],
                         "end_time": [2.0, 1.0, 3.0], "similarity": [0.9, 0.5, 0.25]})  # fmt: skip
    html_path = write_search_page(hits, query, tmp_path / "hits.html", features=features)
    text = html_path.read_text()
    page, errors, screenshot = load_in_chromium(chromium, html_path, tmp_path)

    assert errors == []
    assert page["title"] == "birdcall search: query.wav"
    assert len(page["images"]) == text.count("<img ") == 3  # the query and the two hits whose file exists
    assert [img for img in page["images"] if img["error"] or img["width"] == 0 or img["height"] == 0] == []
    assert len(page["audios"]) == 3
    for audio in page["audios"]:
        assert audio["mime"] == "audio/wav" and audio["loaded"] and audio["error"] is None and abs(audio["duration"] - 1.0) < 0.01, audio
    assert all(link.startswith(("data:", "#")) for link in page["links"])
    assert "source file not found" in text and "&lt;script&gt;x.wav" in text
    assert screenshot.stat().st_size > 10_000
