"""`birdcall search`: the windows of an embedding table (``birdcall embed``) most similar to a query call."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import out, user_errors
from .predict import THREADS


def register(app: typer.Typer) -> None:
    app.command("search")(search)


def search(
    query: Path = typer.Argument(..., help="The query call (an audio file; its windows' vectors are averaged)."),
    index: Path = typer.Option(..., "--index", help="Embedding table written by `birdcall embed` (EMB.parquet)."),
    model: str = typer.Option(..., "--model", help="The embedder that wrote the table (birdnet or the same .safetensors); another one is refused."),
    top: int = typer.Option(20, "--top", help="Windows returned."),
    out_path: Path = typer.Option(None, "--out", help="Also write the hits as CSV (file, start_time, end_time, similarity)."),
    html_path: Path = typer.Option(
        None, "--html",
        help="Also write a self-contained HTML page: the query, then per hit its spectrogram and playable audio (cut from the source file).",
    ),
    threads: int = THREADS,
) -> None:
    """Find the windows most similar to QUERY (cosine similarity; exact for small tables, an approximate index saved beside larger ones)."""
    from ..fileio import atomic_write_text
    from ..infer.search import query_vector
    from ..infer.search import search as run_search

    with user_errors():
        vector, info = query_vector(query, model, threads=threads)
        hits = run_search(index, vector, top=top, query_info=info)
        if out_path is not None:
            atomic_write_text(out_path, hits.to_csv(index=False))
        if html_path is not None:
            from ..eval.search_page import write_search_page

            write_search_page(hits, query, html_path, table=index)
    for row in hits.itertuples(index=False):
        out.print(f"{row.similarity:.4f}  {row.file}  {row.start_time:g}-{row.end_time:g} s", highlight=False)
