"""The search page: the query first, the hits in order with a decodable picture and sound cut from the right
window, a placeholder for a source that is missing or not a file, and file names escaped."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdcall.audio import write_audio
from birdcall.errors import ParameterError
from birdcall.eval.search_page import hit_cards, resolve_source, write_search_page
from birdcall.testing.signals import tone

from .conftest import FEATURES

RATE = FEATURES.sample_rate


class Page(HTMLParser):
    """The cards of a search page: per card its id, the text inside it and its img/audio sources."""

    def __init__(self):
        super().__init__()
        self.cards, self._card = [], None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("div", "li") and "card" in (attrs.get("class") or "").split():
            self._card = {"id": attrs["id"], "text": "", "img": [], "audio": []}
            self._depth = 0
        elif self._card is not None:
            if tag in ("img", "audio"):
                self._card[tag].append(attrs["src"])
            if tag in ("div", "li"):
                self._depth += 1

    def handle_endtag(self, tag):
        if self._card is not None and tag in ("div", "li"):
            if self._depth == 0:
                self.cards.append(self._card)
                self._card = None
            else:
                self._depth -= 1

    def handle_data(self, data):
        if self._card is not None:
            self._card["text"] += data


def decode(uri: str, mime: str) -> bytes:
    head, data = uri.split(",", 1)
    assert head == f"data:{mime};base64"
    return base64.b64decode(data, validate=True)


@pytest.fixture
def recordings(tmp_path):
    """A 3-s recording of three tones (500, 1000, 2000 Hz, one a second), a 1-s query, and a file named with markup."""
    parts = [tone(frequency_hz=f, duration=1.0, sample_rate=RATE, amplitude=0.3) for f in (500.0, 1000.0, 2000.0)]
    long = write_audio(tmp_path / "long.wav", np.concatenate(parts), RATE)
    query = write_audio(tmp_path / "query.wav", parts[1], RATE)
    odd = tmp_path / "<script>alert(1)"
    odd.mkdir()
    write_audio(odd / "x&y.wav", parts[0], RATE)
    return tmp_path, long, query, odd / "x&y.wav"


def test_the_page_lists_the_query_then_the_hits_in_order_with_their_own_window(recordings):
    folder, long, query, odd = recordings
    hits = pd.DataFrame({"file": [str(long), str(odd), str(long)], "start_time": [1.0, 0.0, 2.0], "end_time": [2.0, 1.0, 3.0],
                         "similarity": [0.99, 0.5, 0.25]})  # fmt: skip
    page = write_search_page(hits, query, folder / "hits.html", features=FEATURES)
    text = page.read_text(encoding="utf-8")
    parsed = Page()
    parsed.feed(text)
    assert [c["id"] for c in parsed.cards] == ["query", "hit-1", "hit-2", "hit-3"]
    assert "0.9900" in parsed.cards[1]["text"] and "1-2 s" in parsed.cards[1]["text"] and "2-3 s" in parsed.cards[3]["text"]
    for card, frequency in zip(parsed.cards, (1000.0, 1000.0, 500.0, 2000.0)):
        assert len(card["img"]) == 1 and len(card["audio"]) == 1, card["id"]
        assert decode(card["img"][0], "image/png").startswith(b"\x89PNG\r\n\x1a\n")
        y, rate = sf.read(io.BytesIO(decode(card["audio"][0], "audio/wav")), dtype="float32")
        assert rate == RATE and len(y) == RATE  # exactly the 1-s window
        spectrum = np.abs(np.fft.rfft(y))
        assert np.fft.rfftfreq(len(y), 1 / RATE)[spectrum.argmax()] == pytest.approx(frequency, abs=2.0), card["id"]


def test_file_names_are_escaped(recordings):
    folder, _, query, odd = recordings
    hits = pd.DataFrame({"file": [str(odd)], "start_time": [0.0], "end_time": [1.0], "similarity": [0.5]})
    text = write_search_page(hits, query, folder / "hits.html", features=FEATURES, title="<b>t</b>").read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)/x&amp;y.wav" in text
    assert "<b>t</b>" not in text and "&lt;b&gt;t&lt;/b&gt;" in text


def test_a_missing_source_or_a_folder_gives_a_placeholder_card(recordings):
    folder, long, query, _ = recordings
    hits = pd.DataFrame({"file": [str(folder / "gone.wav"), str(folder), "", str(long)], "start_time": [0.0, 0.0, 0.0, 0.0],
                         "end_time": [1.0, 1.0, 1.0, 1.0], "similarity": [0.9, 0.8, 0.7, 0.6]})  # fmt: skip
    parsed = Page()
    parsed.feed(write_search_page(hits, query, folder / "hits.html", features=FEATURES).read_text(encoding="utf-8"))
    for card in parsed.cards[1:4]:
        assert card["img"] == [] and card["audio"] == [] and "source file not found" in card["text"], card["id"]
    assert len(parsed.cards[4]["img"]) == 1 and len(parsed.cards[4]["audio"]) == 1


def test_an_unreadable_source_says_why(recordings):
    folder, _, query, _ = recordings
    (folder / "notaudio.wav").write_bytes(b"not audio at all")
    hits = pd.DataFrame({"file": [str(folder / "notaudio.wav")], "start_time": [0.0], "end_time": [1.0], "similarity": [0.9]})
    card = hit_cards(hits, query, features=FEATURES)[1]
    assert card.image_png is None and card.wav is None and card.problem.startswith("audio unavailable:")


def test_relative_names_are_tried_beside_the_table(recordings, monkeypatch, tmp_path_factory):
    folder, long, _, _ = recordings
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert resolve_source("long.wav") is None
    assert resolve_source("long.wav", table=folder / "emb.parquet") == folder / "long.wav"
    assert resolve_source(str(long)) == long and resolve_source(None) is None and resolve_source("a\x00b") is None


def test_hits_without_the_columns_are_refused(recordings):
    _, _, query, _ = recordings
    with pytest.raises(ParameterError, match="missing similarity"):
        hit_cards(pd.DataFrame({"file": [], "start_time": [], "end_time": []}), query)
