"""Similarity search over embedding tables (birdcall.infer.search): a planted duplicate found first, approximate
search agreeing with exact (recall@10), the saved index rebuilt when the table changes, another embedder refused."""

import numpy as np
import pytest

from birdcall.errors import ParameterError
from birdcall.infer.embeddings import EmbeddingWriter
from birdcall.infer.search import (
    EXPANSION_SEARCH,
    check_same_embedder,
    cosine_search,
    load_index,
    query_windows,
    search,
)

SETTINGS = {"embedder": {"name": "tiny.safetensors", "digest": "abc", "layer": "pre_logits"}, "hop": 5.0}


def write_table(path, values, settings=SETTINGS):
    writer = EmbeddingWriter(path, values.shape[1], settings)
    per_file = len(values) // 2
    for f, chunk in enumerate((values[:per_file], values[per_file:])):
        starts = np.arange(len(chunk), dtype=np.float64) * 5.0
        writer.write(f"rec{f}.wav", starts, starts + 5.0, chunk.astype(np.float32))
    writer.close()
    return path


def test_exact_search_finds_a_planted_duplicate_window_first(tmp_path, rng):
    values = rng.normal(size=(300, 64)).astype(np.float32)
    query = values[217] * 3.0  # the same direction, another scale: cosine 1
    table = write_table(tmp_path / "emb.parquet", values)
    hits = search(table, query, top=5, query_info={"dim": 64, "settings": SETTINGS})
    assert list(hits.columns) == ["file", "start_time", "end_time", "similarity"]
    first = hits.iloc[0]
    assert (first["file"], first["start_time"], first["end_time"]) == ("rec1.wav", (217 - 150) * 5.0, (217 - 150) * 5.0 + 5.0)
    assert first["similarity"] == pytest.approx(1.0, abs=1e-6) and hits["similarity"].iloc[1] < 0.6
    assert hits["similarity"].is_monotonic_decreasing


def test_approximate_search_agrees_with_exact(tmp_path, rng):
    values = rng.normal(size=(600, 32)).astype(np.float32)
    table = write_table(tmp_path / "emb.parquet", values)
    recalls = []
    for q in rng.normal(size=(20, 32)).astype(np.float32):
        exact, _ = cosine_search(values, q, top=10)
        approx = search(table, q, top=10, exact_below=0)  # force the index
        rows = {(f, s) for f, s in zip(approx["file"], approx["start_time"])}
        truth = {("rec0.wav" if r < 300 else "rec1.wav", (r % 300) * 5.0) for r in exact}
        recalls.append(len(rows & truth) / 10)
    assert np.mean(recalls) >= 0.9


def test_the_index_is_saved_and_rebuilt_when_the_table_changes(tmp_path, rng):
    values = rng.normal(size=(200, 16)).astype(np.float32)
    table = write_table(tmp_path / "emb.parquet", values)
    _, rebuilt = load_index(table)
    assert rebuilt and (tmp_path / "emb.parquet.usearch").is_file() and (tmp_path / "emb.parquet.usearch.json").is_file()
    loaded, rebuilt = load_index(table)
    assert not rebuilt  # same bytes: loaded
    assert loaded.expansion_search == EXPANSION_SEARCH  # the search width is set again on a loaded index
    changed = values.copy()
    changed[5] = -values[5]
    write_table(table, changed)
    index, rebuilt = load_index(table)
    assert rebuilt
    found = index.search(-values[5] / np.linalg.norm(values[5]), 1)
    assert int(found.keys[0]) == 5  # the new vector, not the old one


def test_a_query_from_another_embedder_is_refused(tmp_path, rng):
    table = write_table(tmp_path / "emb.parquet", rng.normal(size=(20, 8)).astype(np.float32))
    other = {"dim": 8, "settings": {"embedder": {**SETTINGS["embedder"], "digest": "xyz"}}}
    with pytest.raises(ParameterError, match=r"emb\.parquet: embedded by another embedder than the query \(different digest\)"):
        search(table, np.ones(8), query_info=other)
    with pytest.raises(ParameterError, match=r"different dim"):
        check_same_embedder({"dim": 8, "settings": SETTINGS}, {"dim": 9, "settings": SETTINGS}, table="t")
    with pytest.raises(ParameterError, match="vectors of 8 values, the query has 4"):
        search(table, np.ones(4))


def test_a_query_leaves_out_a_final_window_with_little_audio():
    # a 5.004-s clip in 5-s windows: the 4-ms tail is left out; a 7-s file keeps its 2-s tail; a 0.5-s file its only window
    assert query_windows([0.0, 5.0], duration=5.004).tolist() == [True, False]
    assert query_windows([0.0, 5.0], duration=7.0).tolist() == [True, True]
    assert query_windows([0.0, 5.0], duration=6.0).tolist() == [True, True]
    assert query_windows([0.0], duration=0.5).tolist() == [True]
    assert query_windows([0.0, 1.0, 2.0], duration=2.5, min_audio=1.0).tolist() == [True, True, False]
