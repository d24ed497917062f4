"""The evaluation report: ``report.html`` (one self-contained file), ``metrics.json``, ``per_species.csv`` and
the figures as PNG files in ``figures/``.

``report.html`` embeds every figure and gallery picture as a base64 PNG data URI and every gallery window as a
base64 WAV data URI, with its CSS inline: it opens offline, from anywhere, with no external link at all. A
section whose data the inputs lack (no primary labels, no audio, no embeddings, no training history) is
replaced by a sentence saying so.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validate import check_int
from ..errors import BirdcallError, ParameterError
from ..fileio import atomic_path, atomic_to_csv, atomic_write_text
from ..metrics import EvalMetrics, evaluate_arrays
from ..types import Pathlike
from .gallery import GalleryItem, build_gallery
from .inputs import EvalInputs

__all__ = ["ReportFigure", "ReportResult", "write_report"]

NO_LABEL = "(no label)"


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: its PNG, or the sentence that stands in for it."""

    name: str
    title: str
    caption: str = ""
    png: bytes | None = field(default=None, repr=False)
    missing: str = ""


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote, and the metrics it computed."""

    out_dir: Path
    html: Path
    metrics_json: Path
    per_species_csv: Path
    figures: dict[str, Path]
    metrics: EvalMetrics
    gallery: tuple[list[GalleryItem], list[GalleryItem]]


# ------------------------------------------------------------------------------------------------ figures


def _draw(name: str, title: str, caption: str, build) -> ReportFigure:
    """Run ``build() -> matplotlib Figure``; a BirdcallError or ValueError becomes the figure's sentence."""
    from .plots import figure_png

    try:
        return ReportFigure(name, title, caption, png=figure_png(build()))
    except (BirdcallError, ValueError) as err:
        return ReportFigure(name, title, missing=f"This figure could not be drawn: {err}")


def _tsne_groups(inputs: EvalInputs) -> tuple[list[str], str]:
    codes = inputs.labels.codes
    rows = inputs.embedding_rows
    if inputs.primary is not None:
        return [codes[p] if p >= 0 else NO_LABEL for p in inputs.primary[rows]], "coloured by primary label"
    groups = []
    for row in rows:
        present = np.flatnonzero(inputs.y_true[row])
        groups.append(codes[present[0]] if present.size else NO_LABEL)
    return groups, "coloured by the first true species of the window (in species order)"


def _figures(inputs: EvalInputs, metrics: EvalMetrics, *, worst: int, seed: int) -> list[ReportFigure]:
    from . import plots
    from .embeddings import MIN_TSNE_POINTS, tsne_2d

    codes = list(inputs.labels.codes)
    table = metrics.species
    figures = []
    if table["ap"].notna().any():
        figures.append(_draw("per_species_ap", "Per-species average precision", "Weakest species at the top; n is the number of positive samples.",
                             lambda: plots.ap_bar_figure(table)))  # fmt: skip
        figures.append(_draw("pr_curves", "Precision-recall curves", f"Macro average (interpolated precision) and the {worst} species with the lowest AP.",
                             lambda: plots.pr_curves_figure(inputs.y_true, inputs.y_score, codes=codes, ap=table["ap"].to_numpy(), worst=worst)))  # fmt: skip
    else:
        figures.append(ReportFigure("pr_curves", "Precision-recall curves", missing="No species has a positive sample: no AP, no precision-recall curve."))
    if table["auc"].notna().any():
        figures.append(_draw("roc_curves", "ROC curves", f"Macro average and the {worst} species with the lowest ROC-AUC.",
                             lambda: plots.roc_curves_figure(inputs.y_true, inputs.y_score, codes=codes, auc=table["auc"].to_numpy(), worst=worst)))  # fmt: skip
    else:
        figures.append(ReportFigure("roc_curves", "ROC curves", missing="No species has both positive and negative samples: no ROC curve."))
    if metrics.reliability is not None:
        ece = metrics.summary["ece"]
        figures.append(_draw("reliability", "Calibration", f"Every (sample, species) probability in {metrics.summary['num_bins']} equal-width bins; ECE {ece:.4f}.",
                             lambda: plots.reliability_figure(metrics.reliability, ece=ece)))  # fmt: skip
    else:
        figures.append(ReportFigure("reliability", "Calibration", missing="The scores are not probabilities in [0, 1], so there is no reliability curve."))
    if metrics.confusion is not None:
        shown = metrics.confusion_species
        figures.append(_draw("confusion", "Confusion of the primary label",
                             f"Rows: true primary label; columns: highest-scoring species; row-normalised. {len(shown)} species, ordered by "
                             "hierarchical clustering of the confusion so that species mistaken for each other sit together.",
                             lambda: plots.confusion_figure(metrics.confusion[np.ix_(shown, shown)], codes=[codes[j] for j in shown],
                                                            order=metrics.confusion_order)))  # fmt: skip
    else:
        figures.append(ReportFigure("confusion", "Confusion of the primary label",
                              missing="These samples have no primary label (soundscape windows are multi-label), so there is no confusion matrix "
                                      "and no top-1 accuracy."))  # fmt: skip
    if inputs.embeddings is not None and len(inputs.embedding_rows) >= MIN_TSNE_POINTS:
        groups, rule = _tsne_groups(inputs)
        figures.append(_draw("tsne", "t-SNE of the penultimate embeddings",
                             f"{len(groups)} samples, {rule}; embeddings from the {inputs.embedding_source}.",
                             lambda: plots.tsne_figure(tsne_2d(inputs.embeddings, seed=seed), groups)))  # fmt: skip
    else:
        why = ("fewer than 5 samples have an embedding" if inputs.embeddings is not None
               else "these inputs carry no model embeddings (evaluate a torch model or a run folder with its data set)")  # fmt: skip
        figures.append(ReportFigure("tsne", "t-SNE of the penultimate embeddings", missing=f"No t-SNE map: {why}."))
    if inputs.history is not None and len(inputs.history):
        figures.append(_draw("training_curves", "Training curves", "From the run's metrics.csv (one colour per fold).",
                             lambda: plots.training_curves_figure(inputs.history)))  # fmt: skip
    else:
        figures.append(ReportFigure("training_curves", "Training curves", missing="No training history (metrics.csv) comes with these inputs."))
    return figures


# ------------------------------------------------------------------------------------------------ tables and JSON


def _species_frame(inputs: EvalInputs, metrics: EvalMetrics) -> pd.DataFrame:
    table = metrics.species.copy()
    position = 1
    for name in ("scientific_names", "common_names"):
        values = getattr(inputs.labels, name)
        if values:
            table.insert(position, name[:-1], list(values))
            position += 1
    return table


def _jsonable(value: Any) -> Any:
    """Strict-JSON form: NaN and infinity become None, numpy scalars and arrays plain Python."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _gallery_json(gallery: tuple[list[GalleryItem], list[GalleryItem]]) -> list[dict[str, Any]]:
    records = []
    for item in (*gallery[0], *gallery[1]):
        window = item.window
        records.append({
            "kind": item.kind, "sample_id": item.sample_id, "species": item.species, "score": item.score, "true_labels": list(item.true_labels),
            "file": str(window.path) if window else None, "start_time": window.start_time if window else None,
            "duration": window.duration if window else None, "problem": item.problem,
        })  # fmt: skip
    return records


def _metrics_json(inputs: EvalInputs, metrics: EvalMetrics, species: pd.DataFrame, figures: list[ReportFigure], gallery, title: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "title": title,
        "kind": inputs.kind,
        "source": inputs.source,
        "summary": metrics.summary,
        "per_species": species.to_dict("records"),
        "calibration": metrics.reliability.to_dict("records") if metrics.reliability is not None else None,
        "confusion": None,
        "figures": {f.name: (f"figures/{f.name}.png" if f.png else None) for f in figures},
        "gallery": _gallery_json(gallery),
        "notes": list(inputs.notes) + [f.missing for f in figures if f.missing],
    }
    if metrics.confusion is not None:
        shown = metrics.confusion_species[metrics.confusion_order]
        document["confusion"] = {
            "species": [inputs.labels.codes[j] for j in shown],
            "counts": metrics.confusion[np.ix_(shown, shown)],
            "rows": "true primary label",
            "columns": "highest-scoring species",
        }
    return _jsonable(document)


# ------------------------------------------------------------------------------------------------ HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 1.5em 3em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; } .meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f4f4f4; position: sticky; top: 0; } td.name, th.name { text-align: left; }
.scroll { max-height: 30em; overflow-y: auto; display: inline-block; border: 1px solid #e4e4e4; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } .missing { color: #8a5a00; background: #fff8e6; padding: 0.5em 0.8em; border-left: 3px solid #e0a800; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em; background: #fafafa; }
.card img { width: 100%; height: auto; } .card audio { width: 100%; margin-top: 0.3em; } .card p { margin: 0.2em 0; font-size: 0.9em; }
.score { font-weight: bold; } .fp { color: #b00020; } .fn { color: #00579b; }
"""


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (f"padded cmAP (padding {summary['padding_factor']})", _number(summary["padded_cmap"])),
        (f"cmAP ({summary['num_species_scored']} species with positives)", _number(summary["cmap"])),
        (f"macro ROC-AUC ({summary['num_species_auc']} species)", _number(summary["macro_auc"])),
        ("micro ROC-AUC (all sample-species pairs)", _number(summary["micro_auc"])),
        (f"top-1 accuracy on the primary label ({summary['num_primary']} samples)", _number(summary["top1_accuracy"])),
        (f"expected calibration error ({summary['num_bins']} bins)", _number(summary["ece"])),
        ("samples", str(summary["num_samples"])),
        ("species", str(summary["num_species"])),
    ]
    return rows


def _figure_html(figure: ReportFigure) -> str:
    if figure.png is None:
        return f'<h3>{html.escape(figure.title)}</h3>\n<p class="missing">{html.escape(figure.missing)}</p>'
    return (
        f'<figure id="fig-{figure.name}"><img src="{_data_uri("image/png", figure.png)}" alt="{html.escape(figure.title)}">'
        f"<figcaption><b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)}</figcaption></figure>"
    )


def _species_table_html(species: pd.DataFrame) -> str:
    columns = [c for c in species.columns if c not in ("species", "scientific_name", "common_name")]
    names = [c for c in ("common_name", "scientific_name") if c in species.columns]
    head = "".join(f'<th class="name">{html.escape(c)}</th>' for c in ["species", *names]) + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for record in species.sort_values("ap", kind="stable", na_position="last").to_dict("records"):
        cells = "".join(f'<td class="name">{html.escape(str(record[c]))}</td>' for c in ["species", *names])
        cells += "".join(f"<td>{_number(record[c], 3)}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _card_html(item: GalleryItem) -> str:
    css = "fp" if item.kind == "false positive" else "fn"
    where = ""
    if item.window is not None:
        span = f"{item.window.start_time:g}-{item.window.start_time + item.window.duration:g} s"
        where = span if item.window.path.name in item.sample_id else f"{item.window.path.name}, {span}"
    parts = [
        f'<div class="card {css}-card">',
        (f'<p><span class="{css}">{html.escape(item.kind)}</span>: <b>{html.escape(item.species)}</b> '
         f'scored <span class="score">{item.score:.4f}</span></p>'),
        f"<p>sample <code>{html.escape(item.sample_id)}</code>{' (' + html.escape(where) + ')' if where else ''}</p>",
        f"<p>true labels: {html.escape(', '.join(item.true_labels) or 'none')}</p>",
    ]
    if item.image_png is not None:
        parts.append(f'<img src="{_data_uri("image/png", item.image_png)}" alt="log-mel spectrogram of {html.escape(item.sample_id)}">')
    if item.wav is not None:
        parts.append(f'<audio controls preload="metadata" src="{_data_uri("audio/wav", item.wav)}"></audio>')
    if item.problem:
        parts.append(f'<p class="missing">{html.escape(item.problem)}</p>')
    parts.append("</div>")
    return "\n".join(parts)


def _gallery_html(inputs: EvalInputs, gallery: tuple[list[GalleryItem], list[GalleryItem]], count: int) -> str:
    if count == 0:
        return '<p class="missing">The error gallery was turned off.</p>'
    parts = []
    if inputs.windows is None:
        parts.append('<p class="missing">No audio comes with these inputs (give the data folder), so the gallery has no spectrograms and no sound.</p>')
    fp, fn = gallery
    parts.append(f"<h3>Top {len(fp)} false positives</h3><p>Negative (sample, species) pairs with the highest scores.</p>")
    parts.append('<div class="gallery">' + "\n".join(map(_card_html, fp)) + "</div>" if fp else "<p>None: no negative pair.</p>")
    parts.append(f"<h3>Top {len(fn)} false negatives</h3><p>Positive (sample, species) pairs with the lowest scores.</p>")
    parts.append('<div class="gallery">' + "\n".join(map(_card_html, fn)) + "</div>" if fn else "<p>None: no positive pair.</p>")
    return "\n".join(parts)


def _weakest_sentence(species: pd.DataFrame, count: int = 5) -> str:
    scored = species[species["ap"].notna()].sort_values("ap", kind="stable").head(count)
    if scored.empty:
        return ""
    items = ", ".join(f"{html.escape(str(r['species']))} (AP {r['ap']:.3f}, n={int(r['support'])})" for r in scored.to_dict("records"))
    return f"<p>Weakest species by AP: {items}.</p>"


def _html(inputs: EvalInputs, metrics: EvalMetrics, species: pd.DataFrame, figures: list[ReportFigure], gallery, *, title: str, gallery_size: int) -> str:
    from .. import __version__

    by_name = {f.name: f for f in figures}
    sources = "; ".join(f"{html.escape(k)}: <code>{html.escape(v)}</code>" for k, v in inputs.source.items())
    summary = "".join(f'<tr><td class="name">{html.escape(k)}</td><td>{v}</td></tr>' for k, v in _summary_rows(metrics.summary))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in inputs.notes)
    sections = [
        ("summary", "Summary",
         f"<table><tbody>{summary}</tbody></table>{_weakest_sentence(species)}" + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")),
        ("species", "Per species",
         (_figure_html(by_name["per_species_ap"]) if "per_species_ap" in by_name else "") + "<h3>Table</h3>" + _species_table_html(species)),
        ("curves", "Precision-recall and ROC", _figure_html(by_name["pr_curves"]) + _figure_html(by_name["roc_curves"])),
        ("calibration", "Calibration", _figure_html(by_name["reliability"])),
        ("confusion", "Confusion matrix", _figure_html(by_name["confusion"])),
        ("embeddings", "Embeddings", _figure_html(by_name["tsne"])),
        ("training", "Training curves", _figure_html(by_name["training_curves"])),
        ("gallery", "Error gallery", _gallery_html(inputs, gallery, gallery_size)),
    ]  # fmt: skip
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{html.escape(name)}</h2>\n{content}\n</section>' for key, name, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">{html.escape(inputs.kind)} evaluation by birdcall {html.escape(__version__)}. {sources}</p>\n'
        f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------------------------ entry point


def _default_title(inputs: EvalInputs) -> str:
    names = {key: Path(value).name for key, value in inputs.source.items()}
    if inputs.kind == "run" and "run" in names:
        what = f"out-of-fold predictions of {names['run']}"
    elif inputs.kind == "model" and {"model", "data"} <= set(names):
        what = f"{names['model']} on {names['data']}"
    elif inputs.kind == "submission" and {"submission", "solution"} <= set(names):
        what = f"{names['submission']} against {names['solution']}"
    else:
        what = ", ".join(names.values()) or inputs.kind
    return f"birdcall evaluation: {what}"


def write_report(
    inputs: EvalInputs,
    out_dir: Pathlike,
    *,
    title: str | None = None,
    gallery_size: int = 8,
    worst: int = 5,
    padding_factor: int = 5,
    num_bins: int = 10,
    seed: int = 0,
) -> ReportResult:
    """Compute every metric, draw every figure and write the report folder.

    Writes, each file atomically: ``report.html`` (self-contained), ``metrics.json`` (summary, per-species
    metrics, calibration curve, confusion counts in the plotted order, gallery items, notes), ``per_species.csv``
    and ``figures/<name>.png``.

    Args:
        inputs: what to evaluate (see :mod:`birdcall.eval.inputs`).
        out_dir: the report folder (created).
        title: heading of the report.
        gallery_size: false positives and false negatives shown each (0: no gallery).
        worst: weakest species drawn in the PR and ROC figures.
        padding_factor: rows of ones appended for padded cmAP.
        num_bins: bins of the reliability curve.
        seed: random state of the t-SNE map.

    Returns:
        A :class:`ReportResult`.

    Raises:
        ParameterError: invalid arguments or inputs.
    """
    if not isinstance(inputs, EvalInputs):
        raise ParameterError(f"write_report takes EvalInputs, got {type(inputs).__name__}")
    for name, value in (("gallery_size", gallery_size), ("worst", worst)):
        check_int(name, value, min=0)
    out_dir = Path(out_dir)
    title = title or _default_title(inputs)
    metrics = evaluate_arrays(inputs.y_true, inputs.y_score, codes=inputs.labels.codes, primary=inputs.primary,
                              padding_factor=padding_factor, num_bins=num_bins)  # fmt: skip
    species = _species_frame(inputs, metrics)
    figures = _figures(inputs, metrics, worst=worst, seed=seed)
    gallery = build_gallery(inputs, count=gallery_size) if gallery_size else ([], [])

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for figure in figures:
        if figure.png is not None:
            path = out_dir / "figures" / f"{figure.name}.png"
            with atomic_path(path) as tmp:
                tmp.write_bytes(figure.png)
            written[figure.name] = path
    per_species_csv = atomic_to_csv(species, out_dir / "per_species.csv", float_format="%.6g")
    document = _metrics_json(inputs, metrics, species, figures, gallery, title)
    metrics_json = atomic_write_text(out_dir / "metrics.json", json.dumps(document, indent=2, allow_nan=False) + "\n")
    report = atomic_write_text(out_dir / "report.html", _html(inputs, metrics, species, figures, gallery, title=title, gallery_size=gallery_size))
    return ReportResult(out_dir, report, metrics_json, per_species_csv, written, metrics, gallery)
