"""The page of a similarity search (``birdcall search --html``): the query, then each hit with its file, span,
similarity, the log-mel spectrogram of its window and the window's audio to listen to.

One self-contained HTML file in the evaluation report's style (:mod:`birdcall.eval.report`: its CSS, PNG and WAV
as base64 data URIs, so the page opens offline from anywhere); pictures and sound come from the error gallery's
helper (:func:`~birdcall.eval.gallery.window_media`), each window cut from its source file with
:func:`birdcall.audio.load`. A hit's ``file`` is used only when it names an existing regular file (as given, else
relative to the embedding table's folder); otherwise its card says so instead of showing picture and sound.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..errors import AudioLoadError, ParameterError
from ..features import FeatureConfig
from ..fileio import atomic_write_text
from ..types import Pathlike
from .gallery import window_media
from .inputs import WindowRef
from .report import _CSS, _data_uri

__all__ = ["HitCard", "hit_cards", "resolve_source", "search_page_html", "write_search_page"]

HIT_COLUMNS = ("file", "start_time", "end_time", "similarity")
QUERY_MAX_DURATION = 30.0
"""Seconds of the query drawn and embedded in the page at most (a long query file is cut)."""

_PAGE_CSS = _CSS + """
.hits { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1em; padding: 0; list-style: none; }
.rank { font-weight: bold; margin-right: 0.4em; } .query-card { max-width: 640px; } code { overflow-wrap: anywhere; }
"""


@dataclass(frozen=True)
class HitCard:
    """One window on the page: ``rank`` 0 is the query, then the hits from 1 (best first).

    ``image_png`` and ``wav`` hold the window's log-mel picture and audio; without them ``problem`` says why.
    """

    rank: int
    file: str
    start_time: float
    end_time: float
    similarity: float | None = None
    source: Path | None = None
    image_png: bytes | None = field(default=None, repr=False)
    wav: bytes | None = field(default=None, repr=False)
    problem: str = ""


def resolve_source(file: object, *, table: Pathlike | None = None) -> Path | None:
    """The existing regular file that an embedding table's ``file`` names, or None.

    Tried as given (relative to the working folder), then relative to ``table``'s folder; a folder, a device or a
    missing path is never returned.
    """
    if not isinstance(file, str) or not file or "\x00" in file:
        return None
    candidates = [Path(file)]
    if table is not None and not Path(file).is_absolute():
        candidates.append(Path(table).parent / file)
    for path in candidates:
        try:
            if path.is_file():
                return path
        except OSError:  # a name too long or otherwise unusable
            continue
    return None


def _span(start: float, end: float) -> str:
    return f"{round(start, 2):g}-{round(end, 2):g} s"


def _card(rank: int, file: str, start: float, end: float, similarity: float | None, source: Path | None, features: FeatureConfig) -> HitCard:
    card = HitCard(rank, file, float(start), float(end), similarity, source)
    if source is None:
        return replace(card, problem="source file not found (moved, deleted or not a regular file): no picture, no sound")
    title = f"{Path(file).name}  {_span(start, end)}"  # drawn literally by spectrogram_figure
    image, wav, problem = window_media(WindowRef(source, float(start), float(end) - float(start)), features, title=title)
    return replace(card, image_png=image, wav=wav, problem=problem)


def hit_cards(hits: pd.DataFrame, query: Pathlike, *, table: Pathlike | None = None, features: FeatureConfig | None = None,
              query_max_duration: float = QUERY_MAX_DURATION) -> list[HitCard]:  # fmt: skip
    """The query's card (its first ``query_max_duration`` seconds) and one card per row of ``hits``, in order.

    Args:
        hits: the result of :func:`birdcall.infer.search.search` (columns ``file, start_time, end_time, similarity``).
        query: the query audio file.
        table: the embedding table the hits come from (relative ``file`` names are also tried beside it).
        features: spectrogram and audio settings (sample rate, mel bands); the default :class:`FeatureConfig` if None.

    Returns:
        ``1 + len(hits)`` cards; a missing or unreadable source gives a card without picture and sound that says why.

    Raises:
        ParameterError: ``hits`` lacks a column.
    """
    missing = [c for c in HIT_COLUMNS if c not in hits.columns]
    if missing:
        raise ParameterError(f"search hits need the columns {', '.join(HIT_COLUMNS)}; missing {', '.join(missing)}")
    features = features or FeatureConfig()
    from ..audio import info

    source = resolve_source(str(query))
    try:
        length = min(info(source).duration, query_max_duration) if source is not None else query_max_duration
    except AudioLoadError:
        length = query_max_duration  # window_media says why it cannot be read
    cards = [_card(0, str(query), 0.0, length, None, source, features)]
    for rank, row in enumerate(hits.itertuples(index=False), start=1):
        cards.append(_card(rank, str(row.file), row.start_time, row.end_time, float(row.similarity), resolve_source(row.file, table=table), features))
    return cards


def _card_html(card: HitCard) -> str:
    name = html.escape(card.file)
    span = _span(card.start_time, card.end_time)
    if card.rank == 0:
        head = f"<p><b>query</b> <code>{name}</code> ({span})</p>"
        parts = ['<div class="card query-card" id="query">', head]
    else:
        head = (f'<p><span class="rank">#{card.rank}</span> similarity <span class="score">{card.similarity:.4f}</span></p>'
                f'<p><code class="file">{name}</code> <span class="span">{span}</span></p>')  # fmt: skip
        parts = [f'<li class="card hit" id="hit-{card.rank}" data-rank="{card.rank}">', head]
    if card.image_png is not None:
        parts.append(f'<img src="{_data_uri("image/png", card.image_png)}" alt="log-mel spectrogram of {name}, {span}">')
    if card.wav is not None:
        parts.append(f'<audio controls preload="metadata" src="{_data_uri("audio/wav", card.wav)}"></audio>')
    if card.problem:
        parts.append(f'<p class="missing">{html.escape(card.problem)}</p>')
    parts.append("</div>" if card.rank == 0 else "</li>")
    return "\n".join(parts)


def search_page_html(cards: list[HitCard], *, title: str, table: Pathlike | None = None) -> str:
    """The page of :func:`hit_cards`' cards (the query first)."""
    from .. import __version__

    query, hits = cards[0], cards[1:]
    where = f" in <code>{html.escape(str(table))}</code>" if table is not None else ""
    listing = ('<ol class="hits">\n' + "\n".join(map(_card_html, hits)) + "\n</ol>") if hits else '<p class="missing">No hit.</p>'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">Similarity search by birdcall {html.escape(__version__)}: the {len(hits)} windows{where} most similar to the query '
        "(cosine similarity of the embeddings), best first.</p>\n"
        f'<section id="query-section"><h2>Query</h2>\n{_card_html(query)}\n</section>\n'
        f'<section id="hits-section"><h2>Hits</h2>\n{listing}\n</section>\n</body>\n</html>\n'
    )


def write_search_page(hits: pd.DataFrame, query: Pathlike, out: Pathlike, *, table: Pathlike | None = None,
                      features: FeatureConfig | None = None, title: str | None = None, query_max_duration: float = QUERY_MAX_DURATION) -> Path:  # fmt: skip
    """Write the self-contained HTML page of a search's ``hits`` (atomically) and return its path.

    Args:
        hits: the search's result, best first.
        query: the query audio file.
        out: the ``.html`` file to write.
        table: the embedding table searched (named on the page; relative file names are tried beside it).
        features: spectrogram and audio settings; the default :class:`FeatureConfig` if None.
        title: heading of the page.

    Raises:
        ParameterError: ``hits`` lacks a column.
    """
    cards = hit_cards(hits, query, table=table, features=features, query_max_duration=query_max_duration)
    title = title or f"birdcall search: {Path(str(query)).name}"
    return atomic_write_text(Path(out), search_page_html(cards, title=title, table=table))
