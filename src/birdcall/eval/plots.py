"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state).

Every ``*_figure`` function takes the data it shows and returns a :class:`matplotlib.figure.Figure`, so a test
can read back what was drawn (line data, bar heights, image values, tick labels) before
:func:`figure_png` renders it to PNG bytes. User text (species codes, names, titles) is drawn literally, never
as mathtext (:func:`literal_text`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import precision_recall_curve, roc_curve

from ..errors import ParameterError
from ..metrics import check_arrays, row_normalise

__all__ = [
    "ap_bar_figure",
    "confusion_figure",
    "figure_png",
    "literal_text",
    "macro_pr_curve",
    "macro_roc_curve",
    "pr_curves_figure",
    "reliability_figure",
    "roc_curves_figure",
    "spectrogram_figure",
    "training_curves_figure",
    "tsne_figure",
    "worst_species",
]

_GRID = np.linspace(0.0, 1.0, 101)
_HISTORY_LOSSES = ("train_loss", "val_loss")
_HISTORY_METRICS = ("padded_cmap", "cmap", "macro_auc")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def literal_text(text: object) -> str:
    """``text`` escaped so that matplotlib draws it as is: every ``$`` becomes ``\\$``.

    Every user string a figure draws (species codes, file and fold names, titles) goes through this: matplotlib
    parses text with an even number of ``$`` as mathtext, so a species ``Tit $x^2$ bird`` would be drawn with a
    superscript and ``Odd $\\foo$ call`` would fail to parse and drop the figure. With every ``$`` escaped no
    mathtext is parsed and the drawn text equals ``text`` (``Text.get_text()`` returns the escaped form).
    """
    return str(text).replace("$", r"\$")


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes (no software or URL metadata in the file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def worst_species(values: Sequence[float], count: int) -> list[int]:
    """Indices of the ``count`` lowest finite values, lowest first (ties by index)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    return [int(j) for j in finite[np.argsort(values[finite], kind="stable")][:count]]


def macro_pr_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean interpolated precision (best precision at recall >= r) on a recall grid over species with positives.

    Returns:
        ``(recall grid (101,), mean precision (101,), number of species averaged)``; precision is NaN with none.
    """
    curves = []
    for j in np.flatnonzero(truth.any(axis=0)):
        precision, recall, _ = precision_recall_curve(truth[:, j], score[:, j])
        curves.append([precision[recall >= r].max() for r in _GRID])
    if not curves:
        return _GRID, np.full(_GRID.shape, np.nan), 0
    return _GRID, np.mean(curves, axis=0), len(curves)


def macro_roc_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean true-positive rate on a false-positive-rate grid over species with positives and negatives.

    Returns:
        ``(FPR grid (101,), mean TPR (101,), number of species averaged)``; TPR is NaN with none.
    """
    curves = []
    for j in np.flatnonzero(truth.any(axis=0) & ~truth.all(axis=0)):
        fpr, tpr, _ = roc_curve(truth[:, j], score[:, j])
        curves.append(np.interp(_GRID, fpr, tpr))
    if not curves:
        return _GRID, np.full(_GRID.shape, np.nan), 0
    return _GRID, np.mean(curves, axis=0), len(curves)


def _codes(codes: Sequence[str] | None, n: int) -> list[str]:
    codes = [str(j) for j in range(n)] if codes is None else [str(c) for c in codes]
    if len(codes) != n:
        raise ParameterError(f"{len(codes)} species codes for {n} columns")
    return codes


def pr_curves_figure(y_true: Any, y_score: Any, *, codes: Sequence[str] | None = None, ap: Sequence[float], worst: int = 5) -> Figure:
    """Precision-recall curves: the macro average (:func:`macro_pr_curve`) and the ``worst`` species by AP.

    Each worst species is drawn from ``sklearn.metrics.precision_recall_curve``, labelled ``"<code> (AP x)"``.
    """
    truth, score = check_arrays(y_true, y_score)
    codes = _codes(codes, truth.shape[1])
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    grid, precision, count = macro_pr_curve(truth, score)
    ax.plot(grid, precision, color="black", linewidth=2.5, label=f"macro ({count} species)")
    for rank, j in enumerate(worst_species(ap, worst)):
        p, r, _ = precision_recall_curve(truth[:, j], score[:, j])
        ax.plot(r, p, drawstyle="steps-post", linewidth=1.2, color=f"C{rank}", label=f"{literal_text(codes[j])} (AP {ap[j]:.2f}, n={int(truth[:, j].sum())})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall: macro and the weakest species")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return fig


def roc_curves_figure(y_true: Any, y_score: Any, *, codes: Sequence[str] | None = None, auc: Sequence[float], worst: int = 5) -> Figure:
    """ROC curves: the macro average (:func:`macro_roc_curve`) and the ``worst`` species by AUC."""
    truth, score = check_arrays(y_true, y_score)
    codes = _codes(codes, truth.shape[1])
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    grid, tpr, count = macro_roc_curve(truth, score)
    ax.plot(grid, tpr, color="black", linewidth=2.5, label=f"macro ({count} species)")
    for rank, j in enumerate(worst_species(auc, worst)):
        fpr, tpr_j, _ = roc_curve(truth[:, j], score[:, j])
        ax.plot(fpr, tpr_j, linewidth=1.2, color=f"C{rank}", label=f"{literal_text(codes[j])} (AUC {auc[j]:.2f}, n={int(truth[:, j].sum())})")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", xlim=(0, 1), ylim=(0, 1.02), title="ROC: macro and the weakest species")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def confusion_figure(confusion: Any, *, codes: Sequence[str], order: Sequence[int]) -> Figure:
    """The row-normalised confusion matrix (rows: true primary label, columns: arg-max prediction), rows and
    columns both in ``order``; cells show percentages when there are few species."""
    counts = np.asarray(confusion, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    codes = _codes(codes, counts.shape[0])
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or sorted(order.tolist()) != list(range(counts.shape[0])):
        raise ParameterError(f"confusion_figure: needs a square matrix and a permutation of its rows, got {counts.shape} and {order.tolist()}")
    rates = row_normalise(counts)[np.ix_(order, order)]
    n = len(order)
    side = min(max(4.0, 0.22 * n + 2.0), 22.0)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true species' clips")
    labels = [literal_text(codes[j]) for j in order]
    size = "small" if n <= 30 else 6 if n <= 60 else 5
    ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
    ax.set_yticks(range(n), labels, fontsize=size)
    ax.set(xlabel="predicted (arg-max)", ylabel="true primary label", title="Confusion of the primary label (rows sum to 1)")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if rates[i, j] > 0:
                    ax.text(j, i, f"{100 * rates[i, j]:.0f}", ha="center", va="center", fontsize="x-small",
                            color="white" if rates[i, j] > 0.5 else "black")  # fmt: skip
    return fig


def tsne_figure(points: Any, groups: Sequence[str], *, title: str = "t-SNE of the penultimate embeddings") -> Figure:
    """Scatter of 2-D points, one colour (and one scatter collection, labelled with the group) per group.

    Groups are drawn in sorted order; with more than 20 groups the legend is replaced by the group name at each
    group's median point.
    """
    points = np.asarray(points, dtype=np.float64)
    groups = np.asarray([str(g) for g in groups])
    if points.ndim != 2 or points.shape[1] != 2 or len(groups) != len(points):
        raise ParameterError(f"tsne_figure: needs (n, 2) points and n groups, got {points.shape} and {len(groups)}")
    names = sorted(set(groups.tolist()))
    fig = _figure(7.5, 6.0)
    ax = fig.add_subplot()
    markers = "os^Dv<>PX*"
    for k, name in enumerate(names):
        mask = groups == name
        ax.scatter(points[mask, 0], points[mask, 1], s=14, alpha=0.8, color=f"C{k % 10}", marker=markers[(k // 10) % len(markers)], label=literal_text(name))
        if len(names) > 20:
            x, y = np.median(points[mask], axis=0)
            ax.annotate(literal_text(name), (x, y), fontsize=6, ha="center")
    if len(names) <= 20:
        ax.legend(fontsize="x-small", markerscale=1.2, loc="best", ncol=2 if len(names) > 10 else 1)
    ax.set(title=literal_text(title), xticks=[], yticks=[])
    return fig


def training_curves_figure(history: pd.DataFrame) -> Figure:
    """Loss (left) and validation metrics (right) per epoch, one colour per fold, from a run's ``metrics.csv``.

    ``history`` has an ``epoch`` column, an optional ``fold`` column and any of ``train_loss``, ``val_loss``,
    ``padded_cmap``, ``cmap``, ``macro_auc``; each line is labelled ``"<fold name> <column>"``.
    """
    if not isinstance(history, pd.DataFrame) or "epoch" not in history.columns or history.empty:
        raise ParameterError("training_curves_figure: needs a non-empty metrics table with an 'epoch' column")
    fig = _figure(11.0, 4.2)
    loss_ax, metric_ax = fig.subplots(1, 2)
    folds = list(dict.fromkeys(history["fold"])) if "fold" in history.columns else [None]
    styles = {"train_loss": "-", "val_loss": "--", "padded_cmap": "-", "cmap": "--", "macro_auc": ":"}
    for k, fold in enumerate(folds):
        rows = history if fold is None else history[history["fold"] == fold]
        name = "run" if fold is None else f"fold {literal_text(fold)}"
        for ax, columns in ((loss_ax, _HISTORY_LOSSES), (metric_ax, _HISTORY_METRICS)):
            for column in columns:
                if column in rows.columns and rows[column].notna().any():
                    ax.plot(rows["epoch"], rows[column], linestyle=styles[column], marker=".", color=f"C{k % 10}", label=f"{name} {column}")
    epochs = sorted(set(history["epoch"].tolist()))
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    metric_ax.set(xlabel="epoch", ylabel="validation score", title="Validation metrics")
    for ax in (loss_ax, metric_ax):
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="x-small", ncol=2 if len(folds) > 3 else 1)
    return fig


def ap_bar_figure(species: pd.DataFrame) -> Figure:
    """Per-species AP as horizontal bars, weakest at the top, with the support written beside each bar.

    ``species`` is a :func:`~birdcall.metrics.species_table`; species without positives (AP NaN) are left out.
    """
    if not isinstance(species, pd.DataFrame) or not {"species", "ap", "support"} <= set(species.columns):
        raise ParameterError("ap_bar_figure: needs a species table with species, ap and support columns")
    rows = species[species["ap"].notna()].sort_values("ap", kind="stable")
    n = len(rows)
    fig = _figure(7.0, min(max(2.5, 0.2 * n + 1.2), 40.0))
    ax = fig.add_subplot()
    positions = np.arange(n)[::-1]  # weakest species at the top
    ax.barh(positions, rows["ap"], color="C0")
    for y, ap, support in zip(positions, rows["ap"], rows["support"]):
        ax.text(min(ap, 1.0) + 0.01, y, f"n={int(support)}", va="center", fontsize=6 if n > 40 else "x-small")
    ax.set_yticks(positions, [literal_text(code) for code in rows["species"]], fontsize=6 if n > 40 else "small")
    ax.set(xlim=(0, 1.12), ylim=(-0.6, n - 0.4), xlabel="average precision (n = positives)", title="Per-species AP")
    ax.grid(axis="x", alpha=0.3)
    return fig


def reliability_figure(curve: pd.DataFrame, *, ece: float) -> Figure:
    """Reliability diagram: fraction of positives against mean score per bin, and the bin counts below."""
    if not isinstance(curve, pd.DataFrame) or not {"lower", "upper", "count", "mean_score", "fraction_positive"} <= set(curve.columns):
        raise ParameterError("reliability_figure: needs a reliability_curve table")
    fig = _figure(5.5, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    filled = curve[curve["count"] > 0]
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    top.plot(filled["mean_score"], filled["fraction_positive"], marker="o", color="C0", label=f"model (ECE {ece:.4f})")
    top.set(ylabel="fraction of positives", xlim=(0, 1), ylim=(0, 1.02), title="Reliability (all species pooled)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(filled["lower"], filled["count"], width=(filled["upper"] - filled["lower"]).to_numpy(), align="edge", color="C7", edgecolor="white")
    bottom.set(yscale="log", xlabel="predicted probability", ylabel="count")
    return fig


def spectrogram_figure(db: Any, *, sample_rate: int, hop_length: int, fmin: float, fmax: float, title: str = "") -> Figure:
    """A log-mel spectrogram ``(n_mels, n_frames)`` in dB, time in seconds on x, mel bands (labelled in Hz) on y."""
    db = np.asarray(db, dtype=np.float64)
    if db.ndim != 2 or db.size == 0:
        raise ParameterError(f"spectrogram_figure: needs a (n_mels, n_frames) array, got shape {db.shape}")
    fig = _figure(4.8, 2.4)
    ax = fig.add_subplot()
    duration = db.shape[1] * hop_length / sample_rate
    top = float(db.max()) if np.isfinite(db.max()) else 0.0
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80.0, vmax=top, extent=(0.0, duration, 0, db.shape[0]),
              interpolation="nearest")  # fmt: skip
    from ..features.mel import mel_frequencies

    centres = mel_frequencies(n_mels=db.shape[0] + 2, fmin=fmin, fmax=fmax)[1:-1]
    ticks = np.linspace(0, db.shape[0] - 1, 4).round().astype(int)
    ax.set_yticks(ticks + 0.5, [f"{centres[t] / 1000:.1f}" for t in ticks])
    ax.set(xlabel="s", ylabel="kHz")
    if title:
        ax.set_title(literal_text(title), fontsize="small")
    return fig
