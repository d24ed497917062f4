"""Embedding tables (``birdcall embed``): one row per window, the vector in one fixed-size list column.

Parquet layout::

    file        string                          the recording, as given
    start_time  double                          seconds, the window's start
    end_time    double                          seconds, start_time + window length
    embedding   fixed_size_list<float32>[D]     the window's embedding

The schema metadata holds, under the key ``birdcall``, one JSON object: ``format`` (``birdcall.embeddings/1``),
``dim`` and ``settings`` (the model: name, version, licence, digest, which layer and how it is pooled; the
windows: sample rate, length, hop). :func:`read_embeddings` returns the keys as a DataFrame, the vectors as one
``(n, D)`` float32 array and that metadata.

Why one list column rather than ``D`` float columns ``emb_0000...``: a writer that streams (row groups of a
few hundred rows, as :class:`EmbeddingWriter` does) makes a footer with one entry per column per row group, so a
wide table of 2048 columns has a footer hundreds of times larger, and ``pd.read_parquet`` of it into an array was
several times slower than pyarrow (or pandas plus ``np.stack``) reading the list column; writing was slower too.
The list column also reads without copying (``Array.flatten().to_numpy()``, as :func:`read_embeddings` does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validate import is_int
from ..errors import DataError, ParameterError
from ..types import Pathlike

__all__ = [
    "EMBEDDINGS_FORMAT",
    "EMBEDDING_COLUMN",
    "EmbeddingTable",
    "EmbeddingWriter",
    "embedding_schema",
    "read_embedding_info",
    "read_embeddings",
]

EMBEDDING_COLUMN = "embedding"
EMBEDDINGS_FORMAT = "birdcall.embeddings/1"
METADATA_KEY = b"birdcall"
_GROUP_BYTES = 4 << 20  # a row group holds about this many bytes of vectors


def embedding_schema(dim: int, settings: dict | None = None):
    """The pyarrow schema of an embedding table with ``dim`` values a row, ``settings`` in its metadata."""
    import pyarrow as pa

    if not is_int(dim) or dim < 1:
        raise ParameterError(f"embedding dim must be a positive integer, got {dim!r}")
    meta = {"format": EMBEDDINGS_FORMAT, "dim": int(dim), "settings": settings or {}}
    return pa.schema(
        [("file", pa.string()), ("start_time", pa.float64()), ("end_time", pa.float64()), (EMBEDDING_COLUMN, pa.list_(pa.float32(), int(dim)))],
        metadata={METADATA_KEY: json.dumps(meta, ensure_ascii=False).encode("utf-8")},
    )


class EmbeddingWriter:
    """Write an embedding table row group by row group: memory holds one row group, whatever the row count.

    Args:
        path: the Parquet file (written in place; callers wanting atomicity pass a temporary and rename it).
        dim: values per row.
        settings: JSON-able description stored in the schema metadata.
    """

    def __init__(self, path: Pathlike, dim: int, settings: dict | None = None):
        import pyarrow.parquet as pq

        self.schema = embedding_schema(dim, settings)
        self.dim = int(dim)
        self.group_rows = max(1, _GROUP_BYTES // (4 * self.dim))
        self.rows = 0  # rows written to the file so far
        self._pending: list = []  # pyarrow tables not written yet (fewer than group_rows rows in all, between calls)
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(str(path), self.schema, use_dictionary=["file"])

    def write(self, file: str, start_times: np.ndarray, end_times: np.ndarray, values: np.ndarray) -> None:
        """Append rows of one file (``values``: ``(n, dim)``)."""
        import pyarrow as pa

        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.dim or len(values) != len(start_times) or len(values) != len(end_times):
            raise ParameterError(f"expected ({len(start_times)}, {self.dim}) embeddings, got shape {values.shape}")
        if len(values):
            table = pa.table(
                [
                    pa.array([file] * len(values), type=pa.string()),
                    pa.array(np.asarray(start_times, dtype=np.float64)),
                    pa.array(np.asarray(end_times, dtype=np.float64)),
                    pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).reshape(-1), type=pa.float32()), self.dim),
                ],
                schema=self.schema,
            )
            self._add(table)

    def write_batch(self, batch) -> None:
        """Append a pyarrow record batch or table with the columns of this schema (a row group of a part, say)."""
        import pyarrow as pa

        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if table.num_rows:
            self._add(table.cast(self.schema))

    def _add(self, table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.group_rows:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        """Write the pending rows in whole row groups of ``group_rows`` (all of them when ``final``)."""
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        n = table.num_rows if final else table.num_rows - table.num_rows % self.group_rows
        if n:
            self._writer.write_table(table.slice(0, n), row_group_size=self.group_rows)
            self.rows += n
        rest = table.slice(n)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        """Write what is pending and the footer."""
        try:
            self._flush(final=True)
        finally:
            self._writer.close()


def iter_batches(path: Pathlike, dim: int) -> Iterator[Any]:
    """The record batches of an embedding table, a row group's worth at a time."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(str(path))
    yield from handle.iter_batches(batch_size=max(1, _GROUP_BYTES // (4 * dim)))


@dataclass(frozen=True)
class EmbeddingTable:
    """An embedding table in memory.

    Attributes:
        keys: ``file``, ``start_time``, ``end_time``, one row per window.
        values: ``(len(keys), dim)`` float32, read-only (a view of the Arrow column; ``.copy()`` to modify).
        info: the schema metadata (``format``, ``dim``, ``settings``).
    """

    keys: pd.DataFrame
    values: np.ndarray
    info: dict


def read_embedding_info(path: Pathlike) -> dict:
    """The ``birdcall`` metadata of an embedding table (``format``, ``dim``, ``settings``), without its rows.

    Raises:
        DataError: not a Parquet file, or one without birdcall embedding metadata.
    """
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(str(path))
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(path, f"not a readable Parquet file ({' '.join(str(err).split())[:200]})") from None
    raw = (schema.metadata or {}).get(METADATA_KEY)
    try:
        info = json.loads(raw.decode("utf-8")) if raw is not None else None
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("format") != EMBEDDINGS_FORMAT:
        raise DataError(path, f"no birdcall embeddings metadata ({EMBEDDINGS_FORMAT})")
    return info


def read_embeddings(path: Pathlike) -> EmbeddingTable:
    """Read an embedding table written by ``birdcall embed`` (:func:`~birdcall.infer.run_inference` with
    ``kind="embeddings"``).

    Raises:
        DataError: not an embedding table.
    """
    import pyarrow.parquet as pq

    info = read_embedding_info(path)
    table = pq.read_table(str(path))
    dim = int(info["dim"])
    column = table.column(EMBEDDING_COLUMN).combine_chunks() if table.num_rows else None
    values = column.flatten().to_numpy().reshape(-1, dim) if column is not None else np.zeros((0, dim), np.float32)
    keys = table.select(["file", "start_time", "end_time"]).to_pandas()
    return EmbeddingTable(keys, values, info)
