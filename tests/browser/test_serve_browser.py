"""The page of `birdcall serve` in headless Debian chromium, driven by Selenium through /usr/bin/chromedriver.

A real server (subprocess, free port, an API key) serves a tiny ONNX model. The page asks for the key, a
generated recording is chosen and uploaded; the detections table, the spectrogram and its boxes render; the
table sorts; a row plays its window; the downloaded CSV equals `birdcall analyze`'s on the same file; a
recording from the (fake) microphone goes through the same path as a WAV. No console error (CSP included).

The driver path is given explicitly (Selenium Manager never downloads anything). Without chromium or
chromedriver the test is skipped, except in CI (``CI=true``), where it fails: ``make test`` installs both
(``make browser``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
KEY = "browser-key"


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    chromium = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if chromium is None or not os.access(CHROMEDRIVER, os.X_OK):
        message = "chromium or chromedriver is not installed (make browser installs Debian's chromium and chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return chromium, CHROMEDRIVER


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny ONNX model (2-s windows, 3 species), a 20-s recording of generated calls, and the server."""
    import torch

    from birdcall.audio import write_audio
    from birdcall.data.labels import LabelSet
    from birdcall.export import export_onnx
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model
    from birdcall.testing.server import ServerProcess
    from birdcall.testing.signals import call_in_noise

    root = tmp_path_factory.mktemp("serve-browser")
    labels = LabelSet(("sp_a", "sp_b", "sp_c"), scientific_names=("Avis a", "Avis b", "Avis <i>c</i>"), common_names=("A bird", "B bird", "C & bird"))
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=2.0)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = export_onnx(create_model("test_cnn", num_classes=3, features=features).eval(), root / "tiny.onnx", labels=labels)
    rng = np.random.default_rng(7)
    pieces = [call_in_noise(rng=rng, duration=4.0, call_start=0.5 + i * 0.5, call_duration=0.8, sample_rate=32000)[0] for i in range(5)]
    recording = write_audio(root / "dawn.wav", np.concatenate(pieces), 32000)
    with ServerProcess(model, tmp_dir=root / "uploads", api_key=KEY, log=root / "server.log") as server:
        yield server, model, recording, root
    assert list((root / "uploads").iterdir()) == []


def _driver(chromium: str, chromedriver: str, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400", "--mute-audio", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def _wait(driver, condition, timeout: float = 60.0, message: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def test_upload_record_see_play_and_download(browser_paths, served, tmp_path):
    from selenium.webdriver.common.by import By

    from birdcall.cli import app

    server, model, recording, root = served
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["analyze", "--quiet", "--model", str(model), "--out", str(out), str(recording)])
    assert result.exit_code == 0, result.output
    expected_csv = (out / "detections.csv").read_text().replace(str(recording), recording.name)

    driver = _driver(*browser_paths, downloads)
    try:
        driver.get(server.url + "/")
        _wait(driver, lambda d: d.find_element(By.ID, "key-panel").is_displayed(), message="the page did not ask for the API key")
        driver.find_element(By.ID, "api-key").send_keys(KEY)
        driver.find_element(By.ID, "save-key").click()
        _wait(driver, lambda d: "3 species" in d.find_element(By.ID, "model-line").text, message="the model did not load")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#species li")) == 3

        driver.find_element(By.ID, "file").send_keys(str(recording))
        _wait(driver, lambda d: d.find_element(By.ID, "analyze").is_enabled())
        driver.find_element(By.ID, "analyze").click()
        _wait(driver, lambda d: d.find_element(By.ID, "results").is_displayed() and d.find_elements(By.CSS_SELECTOR, "#detections tbody tr"),
              message="no detections table")  # fmt: skip

        rows = driver.find_elements(By.CSS_SELECTOR, "#detections tbody tr")
        table = expected_csv.strip().splitlines()[1:]
        assert len(rows) == len(table) == 10 * 3  # 20 s in 2-s windows, an untrained model scores every species above 0.1
        assert rows[0].find_elements(By.TAG_NAME, "td")[3].text == table[0].split(",")[5]
        figure = driver.execute_script("""
            const img = document.getElementById('spectrogram-image');
            const area = document.getElementById('figure').getBoundingClientRect();
            const boxes = Array.from(document.querySelectorAll('.det-box')).map(b => b.getBoundingClientRect());
            return {natural: [img.naturalWidth, img.naturalHeight], shown: [img.clientWidth, img.clientHeight], lanes: document.querySelectorAll('.lane').length,
                    boxes: boxes.length, inside: boxes.every(r => r.width > 0 && r.left >= area.left - 1 && r.right <= area.right + 1),
                    labels: Array.from(document.querySelectorAll('.lane-label')).map(l => l.textContent)};
        """)  # fmt: skip
        assert figure["natural"] == [1000, 129] and figure["shown"][0] > 500 and figure["shown"][1] > 100  # 20 s at 50 px/s; 0-8 kHz
        assert figure["boxes"] == len(rows) and figure["inside"] and figure["lanes"] == 3
        assert "C & bird" in figure["labels"]  # names are text, never HTML

        header = driver.find_element(By.CSS_SELECTOR, "th[data-key='confidence']")
        header.click()  # highest confidence first
        values = [float(r.find_elements(By.TAG_NAME, "td")[5].text) for r in driver.find_elements(By.CSS_SELECTOR, "#detections tbody tr")]
        assert values == sorted(values, reverse=True) and header.get_attribute("aria-sort") == "descending"
        header.click()
        values = [float(r.find_elements(By.TAG_NAME, "td")[5].text) for r in driver.find_elements(By.CSS_SELECTOR, "#detections tbody tr")]
        assert values == sorted(values)

        row = driver.find_elements(By.CSS_SELECTOR, "#detections tbody tr")[0]
        start, end = float(row.find_elements(By.TAG_NAME, "td")[0].text), float(row.find_elements(By.TAG_NAME, "td")[1].text)
        row.find_element(By.CSS_SELECTOR, "button.play").click()
        _wait(driver, lambda d: d.execute_script("const p = document.getElementById('player'); return !p.paused && p.currentTime > arguments[0];", start),
              timeout=20, message="the window did not play")  # fmt: skip
        _wait(driver, lambda d: d.execute_script("return document.getElementById('player').paused"), timeout=20, message="playing did not stop")
        stopped = driver.execute_script("return document.getElementById('player').currentTime")
        assert end <= stopped < end + 0.5  # stopped at the window's end

        driver.find_element(By.ID, "download-csv").click()
        target = downloads / "dawn.detections.csv"
        _wait(driver, lambda d: target.exists() and target.stat().st_size > 0, timeout=30, message="no CSV downloaded")
        time.sleep(0.3)
        assert target.read_text() == expected_csv
        driver.find_element(By.ID, "download-raven").click()
        _wait(driver, lambda d: (downloads / "dawn.selections.txt").exists(), timeout=30, message="no Raven table downloaded")
        assert (downloads / "dawn.selections.txt").read_text() == (out / "raven" / "dawn.selections.txt").read_text()
        driver.save_screenshot(str(root / "serve-page.png"))

        driver.find_element(By.ID, "record").click()  # the fake microphone (a beep): recorded, converted to WAV, uploaded
        time.sleep(2.5)
        driver.find_element(By.ID, "record").click()
        _wait(driver, lambda d: d.find_element(By.ID, "chosen").text.startswith("recording-"), timeout=30, message="the recording was not converted")
        assert ".wav (" in driver.find_element(By.ID, "chosen").text
        driver.find_element(By.ID, "analyze").click()
        _wait(driver, lambda d: d.find_element(By.ID, "summary").text.startswith("recording-"), timeout=60, message="the recording was not analysed")
        assert "error" not in driver.find_element(By.ID, "status").get_attribute("class")

        asked_for_key = "/v1/model - Failed to load resource: the server responded with a status of 401"  # before the key: expected
        problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and asked_for_key not in e["message"]]
    finally:
        driver.quit()
    assert problems == [], problems
    shutil.copy(root / "serve-page.png", tmp_path / "serve-page.png")
