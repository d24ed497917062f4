"""Similarity search over an embedding table (``birdcall embed``): the windows most like a query call.

The query is embedded by the same embedder as the table (:func:`query_vector`: its windows through
:func:`~birdcall.infer.run_inference` ``kind="embeddings"``, the L2-normalised window vectors averaged); a query
made by another embedder (other model, digest, layer, pooling) is refused, since its vectors live in another space.

Search is by cosine similarity: exact (one matrix product with numpy) for tables up to ``exact_below`` rows, else an
approximate HNSW index (usearch, the ``search`` extra) built once and saved beside the table as
``<table>.usearch`` with ``<table>.usearch.json`` holding the table's sha256; a table whose bytes changed gets its
index rebuilt at the next search.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AudioLoadError, MissingExtraError, ParameterError
from ..fileio import atomic_write_text, hash_files
from ..types import Pathlike
from .embeddings import EmbeddingTable, read_embedding_info, read_embeddings

__all__ = ["EXACT_BELOW", "MIN_QUERY_AUDIO", "check_same_embedder", "cosine_search", "load_index", "query_vector", "query_windows", "search"]

MIN_QUERY_AUDIO = 1.0
"""A query window holding less than this many seconds of the file (a final window padded to length) is left out of
the query's vector, unless it is the only one: a 5.004-s clip's 4-ms tail, wrapped to 5 s, halved precision@5
on NIPS4B (benchmarks/RESULTS.md)."""
EXACT_BELOW = 20_000
"""Tables with at most this many rows are searched exactly; larger ones through the saved approximate index."""
RESULT_COLUMNS = ("file", "start_time", "end_time", "similarity")


# usearch's default search width (64) found 0.66 of the exact top 10 on a 25 000-row table of near-duplicate
# vectors; 256 found 0.87 at 6 ms a query (benchmarks/RESULTS.md, similarity search): worth its cost here
EXPANSION_SEARCH = 256

def _normalise(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    return values / np.maximum(norms, 1e-12)


def cosine_search(vectors: np.ndarray, query: np.ndarray, *, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine search: ``(rows, similarities)`` of the ``top`` rows of ``vectors (n, D)`` most similar to
    ``query (D,)``, best first (ties: the earlier row)."""
    similarity = _normalise(vectors) @ _normalise(query[None, :])[0]
    order = np.argsort(-similarity, kind="stable")[:top]
    return order, similarity[order]


def embedder_of(info: dict) -> dict:
    """The embedder settings of an embedding table's metadata (what made its vectors)."""
    return dict((info.get("settings") or {}).get("embedder") or {})


def check_same_embedder(table_info: dict, query_info: dict, *, table: Pathlike) -> None:
    """Refuse a query embedded by another embedder than the table's (one line naming what differs).

    Raises:
        ParameterError: the embedder settings or the vector sizes differ.
    """
    a, b = embedder_of(table_info), embedder_of(query_info)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if int(table_info.get("dim", -1)) != int(query_info.get("dim", -2)):
        differ.append("dim")
    if differ:
        raise ParameterError(f"{table}: embedded by another embedder than the query (different {', '.join(differ)}); "
                             "embed the query with the model that made the table")  # fmt: skip


def query_windows(starts: np.ndarray, *, duration: float, min_audio: float = MIN_QUERY_AUDIO) -> np.ndarray:
    """Which query windows go into its vector: those starting at least ``min(min_audio, duration)`` seconds before
    the end of the file (so the first window always does)."""
    starts = np.asarray(starts, dtype=np.float64)
    return duration - starts >= min(min_audio, duration) - 1e-9


def query_vector(audio: Pathlike, model, *, birdnet=None, threads: int | None = None) -> tuple[np.ndarray, dict]:
    """The query's vector (the L2-normalised embeddings of its windows averaged, leaving out a final window with
    less than :data:`MIN_QUERY_AUDIO` of audio, see :func:`query_windows`) and its embedding metadata.

    Raises:
        ParameterError: the file gave no window (unreadable: the reason is in the message).
    """
    from .run import EngineOptions, run_inference

    with tempfile.TemporaryDirectory(prefix="birdcall-query-") as folder:
        out = Path(folder) / "query.parquet"
        summary = run_inference(model, [audio], out, kind="embeddings", birdnet=birdnet, engine=EngineOptions(threads=threads))
        if summary.errors:
            raise ParameterError(f"{audio}: cannot embed the query ({summary.errors[0][1]})")
        query = read_embeddings(out)
    if len(query.values) == 0:
        raise ParameterError(f"{audio}: the query gave no window")
    from ..audio import info

    try:
        keep = query_windows(query.keys["start_time"].to_numpy(), duration=info(audio).duration)
    except AudioLoadError:  # embedded all the same: keep every window
        keep = np.ones(len(query.values), dtype=bool)
    values = query.values[keep] if keep.any() else query.values
    return _normalise(_normalise(values).mean(axis=0)), query.info


def _index_paths(table: Path) -> tuple[Path, Path]:
    return table.with_name(table.name + ".usearch"), table.with_name(table.name + ".usearch.json")


def load_index(table: Pathlike, vectors: np.ndarray | None = None):
    """The approximate index of ``table``: the saved one if it was built from these bytes, else built now and saved.

    Returns:
        ``(index, rebuilt)``: a usearch ``Index`` (keys are row numbers) and whether it was (re)built.

    Raises:
        MissingExtraError: usearch is not installed.
    """
    try:
        from usearch.index import Index
    except ImportError:
        raise MissingExtraError("approximate search needs usearch: pip install 'birdcall[search]'") from None
    table = Path(table)
    path, meta = _index_paths(table)
    digest = hash_files([table])
    try:
        saved = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    if saved.get("digest") == digest and path.is_file():
        index = Index.restore(str(path), view=False)
        index.expansion_search = EXPANSION_SEARCH  # a search-time setting: not saved with the index
        return index, False
    if vectors is None:
        vectors = read_embeddings(table).values
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32", expansion_search=EXPANSION_SEARCH)
    index.add(np.arange(len(vectors), dtype=np.uint64), _normalise(vectors))
    tmp = path.with_name(path.name + ".tmp")
    index.save(str(tmp))
    tmp.replace(path)
    atomic_write_text(meta, json.dumps({"digest": digest, "rows": int(len(vectors)), "dim": int(vectors.shape[1])}) + "\n")
    return index, True


def search(table: Pathlike, query: np.ndarray, *, top: int = 20, query_info: dict | None = None, exact_below: int = EXACT_BELOW) -> pd.DataFrame:
    """The ``top`` windows of the embedding ``table`` most similar to ``query``.

    Args:
        table: an embedding table (``birdcall embed``).
        query: a vector ``(D,)`` (:func:`query_vector`).
        top: rows returned at most.
        query_info: the query's embedding metadata; given, a query from another embedder is refused.
        exact_below: search exactly up to this many rows, through the approximate index above.

    Returns:
        DataFrame with :data:`RESULT_COLUMNS`, best first.

    Raises:
        ParameterError: another embedder, a query of the wrong size, ``top < 1``.
        DataError: ``table`` is not an embedding table.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be an integer >= 1, got {top!r}")
    info = read_embedding_info(table)
    if query_info is not None:
        check_same_embedder(info, query_info, table=table)
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    if query.shape[0] != int(info["dim"]):
        raise ParameterError(f"{table}: vectors of {info['dim']} values, the query has {query.shape[0]}")
    data: EmbeddingTable = read_embeddings(table)
    n = len(data.values)
    if n <= exact_below:
        rows, similarity = cosine_search(data.values, query, top=min(top, n))
    else:
        index, _ = load_index(table, data.values)
        found = index.search(_normalise(query), min(top, n))
        rows = np.asarray(found.keys, dtype=np.int64)
        similarity = 1.0 - np.asarray(found.distances, dtype=np.float32)  # usearch's cos metric is 1 - cosine
    keys = data.keys.iloc[rows].reset_index(drop=True)
    keys["similarity"] = np.asarray(similarity, dtype=np.float32)
    return keys[list(RESULT_COLUMNS)]
