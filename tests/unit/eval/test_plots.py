"""Figures are drawn from the right data: read back what each one plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve, roc_curve

from birdcall.errors import ParameterError
from birdcall.eval import plots
from birdcall.metrics import (
    cluster_order,
    primary_confusion,
    reliability_curve,
    species_table,
)


def _line(ax, prefix: str):
    lines = [line for line in ax.lines if line.get_label().startswith(prefix)]
    assert len(lines) == 1, [line.get_label() for line in ax.lines]
    return lines[0]


def test_confusion_figure_shows_the_normalised_counts_in_cluster_order():
    y_score = np.array([[0.9, 0.1, 0.0], [0.8, 0.3, 0.1], [0.1, 0.7, 0.2], [0.1, 0.2, 0.6], [0.1, 0.9, 0.2], [0.2, 0.1, 0.8]])
    counts = primary_confusion(y_score, [0, 1, 1, 1, 2, 2])  # [[1,0,0],[1,1,1],[0,1,1]]
    order = cluster_order(counts)
    fig = plots.confusion_figure(counts, codes=["a", "b", "c"], order=order)
    ax = fig.axes[0]
    shown = np.asarray(ax.images[0].get_array())
    expected = np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0.5, 0.5]])[np.ix_(order, order)]
    np.testing.assert_allclose(shown, expected)
    names = np.array(["a", "b", "c"])[order].tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert sorted(t.get_text() for t in ax.texts) == sorted(["100", "33", "33", "33", "50", "50"])
    with pytest.raises(ParameterError, match="permutation"):
        plots.confusion_figure(counts, codes=["a", "b", "c"], order=[0, 0, 1])


def test_pr_figure_draws_sklearn_curves_of_the_worst_species(scores):
    y_true, y_score, _ = scores
    table = species_table(y_true, y_score, codes=["a", "b", "c"])
    fig = plots.pr_curves_figure(y_true, y_score, codes=["a", "b", "c"], ap=table["ap"].to_numpy(), worst=2)
    ax = fig.axes[0]
    worst = table.sort_values("ap")["species"].tolist()[:2]
    assert [line.get_label().split()[0] for line in ax.lines[1:]] == worst
    j = "abc".index(worst[0])
    precision, recall, _ = precision_recall_curve(y_true[:, j], y_score[:, j])
    line = _line(ax, worst[0])
    np.testing.assert_allclose(line.get_xdata(), recall)
    np.testing.assert_allclose(line.get_ydata(), precision)
    macro = _line(ax, "macro")
    np.testing.assert_allclose(macro.get_ydata(), plots.macro_pr_curve(y_true, y_score)[1])


def test_macro_pr_curve_hand_computed():
    # one species: scores 0.9 (pos), 0.8 (neg), 0.3 (pos). Interpolated precision: 1 up to recall 0.5, then 2/3.
    grid, precision, count = plots.macro_pr_curve(np.array([[1], [0], [1]]), np.array([[0.9], [0.8], [0.3]]))
    assert count == 1
    np.testing.assert_allclose(precision[grid <= 0.5], 1.0)
    np.testing.assert_allclose(precision[grid > 0.5], 2 / 3)


def test_roc_figure_draws_sklearn_curves_and_macro_mean(scores):
    y_true, y_score, _ = scores
    table = species_table(y_true, y_score, codes=["a", "b", "c"])
    fig = plots.roc_curves_figure(y_true, y_score, codes=["a", "b", "c"], auc=table["auc"].to_numpy(), worst=1)
    ax = fig.axes[0]
    j = int(np.nanargmin(table["auc"]))
    fpr, tpr, _ = roc_curve(y_true[:, j], y_score[:, j])
    line = _line(ax, "abc"[j])
    np.testing.assert_allclose(line.get_xdata(), fpr)
    np.testing.assert_allclose(line.get_ydata(), tpr)
    grid, _, count = plots.macro_roc_curve(y_true, y_score)
    assert count == 3
    expected = np.mean([np.interp(grid, *roc_curve(y_true[:, k], y_score[:, k])[:2]) for k in range(3)], axis=0)
    np.testing.assert_allclose(_line(ax, "macro").get_ydata(), expected)


def test_ap_bars_are_the_species_aps_weakest_on_top():
    table = pd.DataFrame({"species": ["a", "b", "c", "d"], "ap": [0.9, 0.2, np.nan, 0.5], "support": [3, 4, 0, 7]})
    ax = plots.ap_bar_figure(table).axes[0]
    bars = sorted(ax.patches, key=lambda bar: -bar.get_y())  # top of the chart first
    assert [round(bar.get_width(), 6) for bar in bars] == [0.2, 0.5, 0.9]  # c (no positives) is left out
    labels = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert [labels[round(bar.get_y() + bar.get_height() / 2)] for bar in bars] == ["b", "d", "a"]
    assert sorted(t.get_text() for t in ax.texts) == ["n=3", "n=4", "n=7"]


def test_training_curves_plot_the_metrics_csv_values():
    history = pd.DataFrame({"epoch": [1, 2, 3, 1, 2, 3], "fold": [0, 0, 0, 1, 1, 1], "train_loss": [0.7, 0.6, 0.5, 0.8, 0.7, 0.6],
                            "val_loss": [0.69, 0.65, 0.66, 0.7, 0.68, 0.67], "padded_cmap": [0.5, 0.6, 0.7, 0.4, 0.5, 0.65], "lr": 1e-3})  # fmt: skip
    loss_ax, metric_ax = plots.training_curves_figure(history).axes[:2]
    line = _line(loss_ax, "fold 1 train_loss")
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(line.get_ydata(), [0.8, 0.7, 0.6])
    np.testing.assert_allclose(_line(metric_ax, "fold 0 padded_cmap").get_ydata(), [0.5, 0.6, 0.7])
    assert len(loss_ax.lines) == 4 and len(metric_ax.lines) == 2  # lr is not drawn
    single = plots.training_curves_figure(history[history["fold"] == 0].drop(columns="fold")).axes[0]
    assert [line.get_label() for line in single.lines] == ["run train_loss", "run val_loss"]
    with pytest.raises(ParameterError, match="epoch"):
        plots.training_curves_figure(pd.DataFrame({"loss": [1.0]}))


def test_tsne_figure_one_collection_per_group(rng):
    points = rng.normal(size=(7, 2))
    groups = ["b", "a", "b", "a", "c", "b", "a"]
    ax = plots.tsne_figure(points, groups).axes[0]
    by_label = {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}
    assert sorted(by_label) == ["a", "b", "c"]
    np.testing.assert_allclose(by_label["a"], points[[1, 3, 6]])
    np.testing.assert_allclose(by_label["c"], points[[4]])


def test_reliability_figure_plots_filled_bins():
    curve = reliability_curve([[0, 1], [0, 1], [1, 1]], [[0.1, 0.9], [0.2, 1.0], [0.3, 0.6]], num_bins=4)
    top, bottom = plots.reliability_figure(curve, ece=0.25).axes[:2]
    line = _line(top, "model")
    np.testing.assert_allclose(line.get_xdata(), [0.15, 0.3, 0.6, 0.95])
    np.testing.assert_allclose(line.get_ydata(), [0, 1, 1, 1])
    assert "ECE 0.2500" in line.get_label()
    assert [bar.get_height() for bar in bottom.patches] == [2, 1, 1, 2]


def test_figure_png_is_a_png_without_urls():
    fig = plots.spectrogram_figure(np.zeros((16, 20)) - 40.0, sample_rate=16_000, hop_length=256, fmin=50.0, fmax=8000.0, title="x")
    png = plots.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"http" not in png


# Species codes (and file names, fold names) are user text: "$...$" must not be parsed as mathtext. The second
# renders as math today (a superscript), the third fails to parse, which used to drop the whole figure.
MATH_CODES = ["$5 warbler", "Tit $x^2$ bird", r"Odd $\foo$ call"]


def _drawn(text) -> str:
    """The string matplotlib renders for a Text artist: its text after mathtext handling (must be plain text)."""
    shown, is_math = text._preprocess_math(text.get_text())
    assert is_math is False, text.get_text()
    return shown


def _legend(ax) -> list[str]:
    return [_drawn(t) for t in ax.get_legend().get_texts()]


def test_literal_text_escapes_every_dollar_and_renders_the_original():
    from matplotlib.text import Text

    for original in [*MATH_CODES, "no dollars", r"back\slash \$ mixed $", "$$", "$"]:
        assert _drawn(Text(text=plots.literal_text(original))) == original


def test_species_codes_with_dollars_are_drawn_literally(scores, rng):
    y_true, y_score, _ = scores
    table = species_table(y_true, y_score, codes=MATH_CODES)
    worst = table.sort_values("ap", kind="stable")["species"].tolist()
    pr = plots.pr_curves_figure(y_true, y_score, codes=MATH_CODES, ap=table["ap"].to_numpy(), worst=3)
    assert [label.split(" (AP")[0] for label in _legend(pr.axes[0])[1:]] == worst
    roc = plots.roc_curves_figure(y_true, y_score, codes=MATH_CODES, auc=table["auc"].to_numpy(), worst=3)
    assert sorted(label.split(" (AUC")[0] for label in _legend(roc.axes[0])[1:]) == sorted(MATH_CODES)
    confusion = plots.confusion_figure(np.eye(3), codes=MATH_CODES, order=[2, 0, 1])
    expected = [MATH_CODES[j] for j in (2, 0, 1)]
    assert [_drawn(t) for t in confusion.axes[0].get_xticklabels()] == expected
    assert [_drawn(t) for t in confusion.axes[0].get_yticklabels()] == expected
    bars = plots.ap_bar_figure(table)
    assert sorted(_drawn(t) for t in bars.axes[0].get_yticklabels()) == sorted(MATH_CODES)
    tsne = plots.tsne_figure(rng.normal(size=(6, 2)), MATH_CODES * 2, title="t-SNE of $x^$")
    assert sorted(_legend(tsne.axes[0])) == sorted(MATH_CODES) and _drawn(tsne.axes[0].title) == "t-SNE of $x^$"
    many = plots.tsne_figure(rng.normal(size=(21, 2)), [f"{code} {k}" for k in range(7) for code in MATH_CODES])  # names at the medians
    assert sorted(_drawn(t) for t in many.axes[0].texts) == sorted(f"{code} {k}" for k in range(7) for code in MATH_CODES)
    curves = plots.training_curves_figure(pd.DataFrame({"epoch": [1, 2], "fold": ["$a$", "$a$"], "train_loss": [0.7, 0.6]}))
    assert _legend(curves.axes[0]) == ["fold $a$ train_loss"]
    spectrogram = plots.spectrogram_figure(np.zeros((16, 20)) - 40.0, sample_rate=16_000, hop_length=256, fmin=50.0, fmax=8000.0,
                                           title=r"Odd $\foo$ call.wav  0-1 s")  # fmt: skip
    assert _drawn(spectrogram.axes[0].title) == r"Odd $\foo$ call.wav  0-1 s"
    for fig in (pr, roc, confusion, bars, tsne, many, curves, spectrogram):
        assert plots.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"  # drawn, not failed on a mathtext parse error
