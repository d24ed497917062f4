"""report.html, metrics.json, per_species.csv: content, self-containment, and sentences for what is missing."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from birdcall.data.labels import LabelSet
from birdcall.errors import ParameterError
from birdcall.eval import evaluate_arrays, write_report
from birdcall.metrics import primary_confusion

from .conftest import make_full_inputs

DATA_URI = re.compile(r'(src)="data:([a-z]+/[a-z]+);base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def module_inputs(tmp_path_factory):
    return make_full_inputs(tmp_path_factory.mktemp("report_inputs"), np.random.default_rng(7))


@pytest.fixture(scope="module")
def full_report(module_inputs, tmp_path_factory):
    """One report with every section, shared by the tests that only read it."""
    return write_report(module_inputs, tmp_path_factory.mktemp("report") / "report", gallery_size=2, worst=2)


@pytest.mark.integration
def test_report_files_and_metrics_json(full_report, module_inputs):
    out = full_report.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["figures", "metrics.json", "per_species.csv", "report.html"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        f"{name}.png" for name in ("per_species_ap", "pr_curves", "roc_curves", "reliability", "confusion", "tsne", "training_curves")
    )
    document = json.loads((out / "metrics.json").read_text())  # strict JSON: NaN would not parse back as a number
    expected = evaluate_arrays(module_inputs.y_true, module_inputs.y_score, primary=module_inputs.primary)
    for key in ("padded_cmap", "cmap", "macro_auc", "micro_auc", "top1_accuracy", "ece"):
        assert document["summary"][key] == pytest.approx(expected.summary[key])
    assert document["kind"] == "run" and len(document["per_species"]) == 3 and len(document["calibration"]) == 10
    assert len(document["gallery"]) == 4 and document["figures"]["tsne"] == "figures/tsne.png"
    confusion = document["confusion"]
    counts = primary_confusion(module_inputs.y_score, module_inputs.primary)
    index = [module_inputs.labels.codes.index(code) for code in confusion["species"]]
    np.testing.assert_array_equal(confusion["counts"], counts[np.ix_(index, index)])


@pytest.mark.integration
def test_per_species_csv(full_report, module_inputs):
    table = pd.read_csv(full_report.per_species_csv)
    assert table.columns.tolist() == ["species", "common_name", "ap", "auc", "best_f1", "threshold", "precision", "recall", "support"]
    assert table["species"].tolist() == list(module_inputs.labels.codes)
    assert table["support"].tolist() == module_inputs.y_true.sum(axis=0).tolist()
    np.testing.assert_allclose(table["ap"], full_report.metrics.species["ap"], rtol=1e-5)


def test_report_html_is_self_contained(full_report):
    text = full_report.html.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text)
    assert "http" not in DATA_URI.sub("", text).lower()  # (base64 payloads may spell it by chance)
    assert all(value.startswith("#") for value in re.findall(r'href="([^"]*)"', text))
    uris = DATA_URI.findall(text)
    images = [base64.b64decode(data) for _, mime, data in uris if mime == "image/png"]
    sounds = [base64.b64decode(data) for _, mime, data in uris if mime == "audio/wav"]
    assert len(images) == text.count("<img ") == 7 + 4  # every figure, and one spectrogram per gallery item
    assert len(sounds) == text.count("<audio ") == 4
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in images)
    for wav in sounds:
        assert sf.info(io.BytesIO(wav)).subtype == "PCM_16" and sf.info(io.BytesIO(wav)).frames == 16_000
    assert images[0] == (full_report.out_dir / "figures" / "per_species_ap.png").read_bytes()


def test_report_lists_species_weakest_first_with_names(full_report):
    text = full_report.html.read_text()
    table = full_report.metrics.species.sort_values("ap")
    rows = re.findall(r'<tr><td class="name">([a-z]+)</td><td class="name">([A-Za-z ]+)</td>', text)
    assert [code for code, _ in rows] == table["species"].tolist()
    assert ("amecro", "American Crow") in rows
    assert f"Weakest species by AP: {table['species'].iloc[0]}" in text


def test_missing_parts_become_sentences(bare_inputs, tmp_path):
    result = write_report(bare_inputs, tmp_path / "bare")
    text = result.html.read_text()
    assert "no confusion matrix" in text and "no top-1 accuracy" in text
    assert "No t-SNE map" in text and "No training history" in text
    assert "No audio comes with these inputs" in text
    assert "<audio" not in text and text.count("<img ") == 4  # AP bars, PR, ROC, reliability
    assert result.html.name == "report.html" and "submission.csv against solution.csv" in text
    document = json.loads(result.metrics_json.read_text())
    assert document["confusion"] is None and document["summary"]["top1_accuracy"] is None
    assert sum("no confusion matrix" in note for note in document["notes"]) == 1


def test_scores_that_are_not_probabilities_skip_calibration(bare_inputs, tmp_path):
    result = write_report(replace(bare_inputs, y_score=bare_inputs.y_score * 3 - 1), tmp_path / "ranks", gallery_size=0)
    text = result.html.read_text()
    assert "not probabilities" in text and "gallery was turned off" in text
    assert json.loads(result.metrics_json.read_text())["calibration"] is None


def test_write_report_rejects_bad_arguments(bare_inputs, tmp_path):
    with pytest.raises(ParameterError, match="EvalInputs"):
        write_report({"y_true": []}, tmp_path)
    with pytest.raises(ParameterError, match="gallery_size"):
        write_report(bare_inputs, tmp_path, gallery_size=-1)


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser would parse them."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


SCRIPT, ATTRIBUTE, MATH = "<script>alert(1)</script>", '" onmouseover="x', r"Tit $\foo$ bird"


@pytest.fixture(scope="module")
def hostile_report(module_inputs, tmp_path_factory):
    """A report whose user text tries to inject HTML and mathtext: species codes and names, sample ids, title,
    source paths and notes."""
    labels = LabelSet((SCRIPT, ATTRIBUTE, MATH), scientific_names=("$5 warbler", "Tit $x^2$ bird", "<b>bold</b>"),
                      common_names=(f"{SCRIPT} common", f"{ATTRIBUTE} common", "Tit $x^2$ bird"))  # fmt: skip
    inputs = replace(
        module_inputs, labels=labels, sample_ids=tuple(f"{SCRIPT}{ATTRIBUTE} {i}" for i in range(len(module_inputs.sample_ids))),
        source={"run": f"/runs/{SCRIPT}"}, notes=(f"a note {SCRIPT}{ATTRIBUTE}",),
    )  # fmt: skip
    return write_report(inputs, tmp_path_factory.mktemp("hostile") / "report", title=f"Report {SCRIPT}{ATTRIBUTE}", gallery_size=2, worst=3)


@pytest.mark.integration
def test_user_text_is_escaped_in_the_html(hostile_report):
    text = hostile_report.html.read_text()
    assert "<script" not in text.lower()  # the report has no script of its own: any would come from user text
    assert 'onmouseover="x' not in text
    assert html.escape(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;" and html.escape(SCRIPT) in text
    assert html.escape(ATTRIBUTE) == "&quot; onmouseover=&quot;x" and html.escape(ATTRIBUTE) in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold</b>" not in text
    parser = _Tags()
    parser.feed(text)
    assert {tag for tag, _ in parser.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "nav", "a", "section",
                                                "table", "thead", "tbody", "tr", "th", "td", "div", "figure", "img", "figcaption", "b", "span",
                                                "code", "audio", "ul", "li"}  # fmt: skip
    attributes = {name for _, attrs in parser.tags for name, _ in attrs}
    assert attributes <= {"lang", "charset", "name", "content", "href", "id", "class", "src", "alt", "controls", "preload"}, attributes
    alts = [dict(attrs)["alt"] for tag, attrs in parser.tags if tag == "img" and dict(attrs)["alt"].startswith("log-mel")]
    assert len(alts) == 4  # the attribute holds the whole sample id: the quote in it did not end the attribute
    assert all(re.fullmatch(rf"log-mel spectrogram of {re.escape(SCRIPT + ATTRIBUTE)} \d+", alt) for alt in alts), alts


@pytest.mark.integration
def test_species_codes_with_mathtext_do_not_drop_figures(hostile_report):
    assert sorted(hostile_report.figures) == sorted(["per_species_ap", "pr_curves", "roc_curves", "reliability", "confusion", "tsne", "training_curves"])
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in hostile_report.figures.values())
    text = hostile_report.html.read_text()
    assert "could not be drawn" not in text and text.count("<img ") == 7 + 4
    document = json.loads(hostile_report.metrics_json.read_text())
    assert not [note for note in document["notes"] if "could not be drawn" in note]
    assert [row["species"] for row in document["per_species"]] == [SCRIPT, ATTRIBUTE, MATH]  # JSON keeps the text as it is
