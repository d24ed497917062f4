"""benchmarks/search_bench.py on planted embeddings: precision@5 is 1 when each species' clips point one way, a
shared tail window in the query lowers it, and the usearch recall against exact search is measured, not assumed."""

import numpy as np
import pandas as pd
import pytest

from birdcall.infer.embeddings import EmbeddingWriter

SPECIES = ("aaa", "bbb", "ccc")


def planted(folder, rng, *, clips=6, dim=16):
    """6 clips per species, each a 5-s window near its species' direction and a 4-ms tail window near one shared
    direction (wrapped padding makes every tail alike); metadata as NIPS4B's train_metadata.csv."""
    directions = rng.normal(size=(len(SPECIES) + 1, dim))
    writer = EmbeddingWriter(folder / "train.parquet", dim, {"embedder": {"name": "planted"}})
    rows = []
    for s, code in enumerate(SPECIES):
        for c in range(clips):
            name = f"{code}/clip{c}.ogg"
            values = np.stack([directions[s] + 0.1 * rng.normal(size=dim), directions[-1] + 0.1 * rng.normal(size=dim)])
            writer.write(str(folder / "train_audio" / name), np.array([0.0, 5.0]), np.array([5.0, 10.0]), values.astype(np.float32))
            rows.append({"filename": name, "primary_label": code, "labels": code, "duration": 5.004})
    writer.close()
    pd.DataFrame(rows).to_csv(folder / "train_metadata.csv", index=False)
    return folder / "train.parquet"


@pytest.mark.integration
def test_precision_at_5_and_the_cost_of_tail_windows(load_benchmark, tmp_path, rng):
    bench = load_benchmark("search_bench")
    table = planted(tmp_path, rng)
    tool_before, tool_now, table_cleaned = bench.precision_at(table, tmp_path, 5, 1.0)
    _, window_p, clip_p, chance = tool_now
    assert window_p == clip_p == 1.0 and table_cleaned[1] == 1.0
    assert chance == pytest.approx(10 / 34)  # both windows of the 5 same-species clips, among the 34 of the 17 others
    assert tool_before[1] < 0.6  # the query's tail pulls it toward every other tail


@pytest.mark.integration
def test_recall_of_the_index_against_exact_search(load_benchmark, rng):
    from usearch.index import Index

    bench = load_benchmark("search_bench")
    vectors = bench._normalise(rng.normal(size=(300, 16)))
    index = Index(ndim=16, metric="cos", dtype="f32")
    index.add(np.arange(300, dtype=np.uint64), vectors)
    assert bench.recall_at(index, vectors, vectors[:20], 10) >= 0.9
