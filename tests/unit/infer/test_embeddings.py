"""Embedding tables: streamed in whole row groups, read back exactly, recognised by their metadata."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from birdcall.errors import DataError, ParameterError
from birdcall.infer import embeddings
from birdcall.infer.embeddings import (
    EmbeddingWriter,
    read_embedding_info,
    read_embeddings,
)


def test_rows_are_written_in_whole_row_groups_and_read_back_exactly(monkeypatch, tmp_path, rng):
    monkeypatch.setattr(embeddings, "_GROUP_BYTES", 4 * 8 * 5)  # 5 rows of 8 values a row group
    values = rng.standard_normal((13, 8)).astype(np.float32)
    writer = EmbeddingWriter(tmp_path / "e.parquet", 8, {"model": "x"})
    for file, rows in (("a.wav", slice(0, 3)), ("b.wav", slice(3, 4)), ("c.wav", slice(4, 13))):  # 3, 1, 9 rows
        starts = np.arange(rows.stop - rows.start, dtype=np.float64) * 5.0
        writer.write(file, starts, starts + 5.0, values[rows])
    writer.write("d.wav", np.zeros(0), np.zeros(0), np.zeros((0, 8), np.float32))  # nothing to add
    assert writer.rows == 10  # two full groups written, 3 rows pending
    writer.close()
    meta = pq.ParquetFile(tmp_path / "e.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 3]
    table = read_embeddings(tmp_path / "e.parquet")
    np.testing.assert_array_equal(table.values, values)
    assert table.values.dtype == np.float32
    assert table.keys["file"].tolist() == ["a.wav"] * 3 + ["b.wav"] + ["c.wav"] * 9
    assert table.keys["end_time"].tolist()[:4] == [5.0, 10.0, 15.0, 5.0]
    assert table.info == {"format": "birdcall.embeddings/1", "dim": 8, "settings": {"model": "x"}}


def test_a_parquet_file_without_embedding_metadata_is_refused(tmp_path):
    pd.DataFrame({"a": [1.0]}).to_parquet(tmp_path / "other.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    for name in ("other.parquet", "text.parquet"):
        with pytest.raises(DataError, match=name):
            read_embedding_info(tmp_path / name)


def test_rows_of_the_wrong_width_are_refused(tmp_path):
    writer = EmbeddingWriter(tmp_path / "e.parquet", 4)
    with pytest.raises(ParameterError, match=r"expected \(2, 4\) embeddings"):
        writer.write("a.wav", np.zeros(2), np.ones(2), np.zeros((2, 3), np.float32))
    writer.close()
    assert len(read_embeddings(tmp_path / "e.parquet").keys) == 0
