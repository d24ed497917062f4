"""Helpers shared by the CLI modules: error reporting and a rich console."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import BirdcallError

console = Console(stderr=True, soft_wrap=True)  # one message, one line: never wrap paths
out = Console(soft_wrap=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`BirdcallError` into a one-line ``error: ...`` message and exit code 2."""
    try:
        yield
    except BirdcallError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)  # a message's [brackets] are text
        raise typer.Exit(code=2) from None


@contextlib.contextmanager
def one_line_warnings(category: type[Warning]) -> Iterator[None]:
    """Print each distinct warning of ``category`` raised inside as one ``warning: ...`` line on stderr (not
    Python's two-line ``file:line: Category: ...`` form); other warnings are left as they are."""
    seen: set[str] = set()
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, kind, filename, lineno, file=None, line=None):
            if not issubclass(kind, category):
                return shown(message, kind, filename, lineno, file, line)
            text = " ".join(str(message).split())
            if text not in seen:
                seen.add(text)
                console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)
            return None

        warnings.showwarning = show
        warnings.simplefilter("always", category)
        yield


def format_score(value: float | None) -> str:
    """A metric with 6 decimals; ``n/a`` for NaN or None (a metric undefined on this data)."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6f}"


def score_table(title: str, scores: Mapping[str, Any]) -> Table:
    """A two-column metric table opened with the headline scores of ``birdcall.metrics.score_arrays``
    (padded cmAP, cmAP, macro ROC-AUC, with their counts); callers add their own rows."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(f"padded cmAP (padding {scores['padding_factor']})", format_score(scores["padded_cmap"]))
    table.add_row(f"cmAP ({scores['num_species_scored']} species with positives)", format_score(scores["cmap"]))
    table.add_row(f"macro ROC-AUC ({scores['num_species_auc']} species)", format_score(scores["macro_auc"]))
    return table
