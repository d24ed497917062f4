"""Similarity search on real embeddings (issue 21, item 3): speed of exact and approximate search, recall@10 of the
usearch index against exact search, and precision@5 of "more examples of this species" on labelled NIPS4B clips.

Usage (embed first, outside the repository; see benchmarks/RESULTS.md for the exact commands):
    birdcall embed --model birdnet --out /tmp/search-bench/unlabeled.parquet DATA/unlabeled
    birdcall embed --model birdnet --out /tmp/search-bench/train.parquet DATA/train_audio
    nice -n 10 .venv/bin/python benchmarks/search_bench.py --unlabeled /tmp/search-bench/unlabeled.parquet \\
        --train /tmp/search-bench/train.parquet --data DATA [--queries 50] [--scale 25000] [--seed 0]

Queries are labelled clips: a clip's query vector is made as :func:`birdcall.infer.search.query_vector` makes it
(its windows' L2-normalised vectors averaged, normalised), taken from the train table so that BirdNET is not
reloaded per query. Precision@5 searches each labelled clip against the windows of the *other* labelled clips; a
hit counts when its clip's ``labels`` hold the query clip's ``primary_label``; it is averaged per species, then over
species (macro), beside the same figure for a random ranking (the share of relevant windows). Tail windows (a clip
of 5.004 s gives a second window of 4 ms, wrapped to 5 s) are kept as the tool keeps them, and also dropped (only
windows with at least ``--min-audio`` s of real audio) to show what they cost.

``--scale N`` also times the index on N rows made of the real vectors tiled with seeded Gaussian jitter (synthetic:
only the timing and the recall of the HNSW graph at a size above ``EXACT_BELOW`` are meaningful there).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from birdcall.infer.embeddings import read_embeddings
from birdcall.infer.search import _normalise, cosine_search, load_index, search


def clip_vectors(keys: pd.DataFrame, values: np.ndarray, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each file's query vector, as ``query_vector`` makes it (windows normalised, averaged, normalised)."""
    unit = _normalise(values)
    out = {}
    for file, rows in keys.groupby("file", sort=False).indices.items():
        if mask is not None:
            rows = rows[mask[rows]]
        if len(rows):
            out[file] = _normalise(unit[rows].mean(axis=0))
    return out


def median_ms(fn, repeats: list) -> float:
    times = []
    for item in repeats:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def recall_at(index, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    recalls = []
    for q in queries:
        exact, _ = cosine_search(vectors, q, top=k)
        found = np.asarray(index.search(q, k).keys, dtype=np.int64)
        recalls.append(len(set(exact.tolist()) & set(found.tolist())) / k)
    return float(np.mean(recalls))


def speed_and_recall(unlabeled: Path, queries: np.ndarray, k: int) -> None:
    table = read_embeddings(unlabeled)
    vectors = table.values
    print(f"table {unlabeled.name}: {len(vectors)} windows x {vectors.shape[1]} values")
    print(f"  exact cosine_search, top {k}: {median_ms(lambda q: cosine_search(vectors, q, top=k), queries):.2f} ms/query (median)")
    print(f"  search() end to end (reads the parquet), exact: {median_ms(lambda q: search(unlabeled, q, top=k), queries[:10]):.1f} ms/query")
    with tempfile.TemporaryDirectory(prefix="search-bench-") as folder:
        copy = Path(folder) / unlabeled.name
        shutil.copyfile(unlabeled, copy)
        start = time.perf_counter()
        index, rebuilt = load_index(copy, vectors)
        build = time.perf_counter() - start
        start = time.perf_counter()
        _, rebuilt_again = load_index(copy)
        reload = time.perf_counter() - start
        assert rebuilt and not rebuilt_again
        print(f"  usearch index: build+save {build:.2f} s, reload {1000 * reload:.1f} ms (includes hashing the table)")
        print(f"  usearch query, top {k}: {median_ms(lambda q: index.search(q, k), queries):.3f} ms/query (median)")
        print(f"  search() end to end through the index: {median_ms(lambda q: search(copy, q, top=k, exact_below=0), queries[:10]):.1f} ms/query")
        print(f"  recall@{k} usearch vs exact, {len(queries)} labelled-clip queries: {recall_at(index, vectors, queries, k):.4f}")


def scaled(vectors: np.ndarray, queries: np.ndarray, rows: int, k: int, seed: int) -> None:
    from usearch.index import Index

    rng = np.random.default_rng(seed)
    unit = _normalise(vectors)
    base = unit[rng.integers(0, len(unit), rows)]
    jitter = rng.standard_normal(base.shape).astype(np.float32) * (0.3 / np.sqrt(base.shape[1]))
    big = _normalise(base + jitter)  # each real vector ~rows/len copies at cosine ~0.96 of each other
    start = time.perf_counter()
    index = Index(ndim=big.shape[1], metric="cos", dtype="f32")
    index.add(np.arange(rows, dtype=np.uint64), big)
    build = time.perf_counter() - start
    print(f"synthetic {rows} rows (real vectors tiled + jitter): usearch build {build:.1f} s (connectivity {index.connectivity}, "
          f"expansion_add {index.expansion_add}); exact {median_ms(lambda q: cosine_search(big, q, top=k), queries):.1f} ms/query")  # fmt: skip
    for expansion in (index.expansion_search, 256):
        index.expansion_search = expansion
        tolerant = []
        for q in queries:  # a hit as similar as the exact k-th counts (the copies make near-ties)
            _, exact = cosine_search(big, q, top=k)
            tolerant.append(float(np.mean(1.0 - np.asarray(index.search(q, k).distances) >= exact[-1] - 1e-4)))
        print(f"  expansion_search {expansion}: query {median_ms(lambda q: index.search(q, k), queries):.3f} ms, "
              f"recall@{k} {recall_at(index, big, queries, k):.4f}, tie-tolerant {np.mean(tolerant):.4f}")  # fmt: skip


def precision_at(train: Path, data: Path, k: int, min_audio: float) -> list[tuple[str, float, float, float]]:
    """Per variant: ``(name, precision@k of windows, of distinct clips, of a random ranking)``, macro over species."""
    table = read_embeddings(train)
    meta = pd.read_csv(data / "train_metadata.csv")
    root = data / "train_audio"
    by_file = {str(root / f): (p, set(str(labels).split()), float(d)) for f, p, labels, d in meta[["filename", "primary_label", "labels", "duration"]].itertuples(index=False)}
    keys = table.keys
    files = keys["file"].to_numpy()
    real_audio = np.array([by_file[f][2] - s for f, s in zip(files, keys["start_time"])])
    unit = _normalise(table.values)
    results = []
    full = real_audio >= min_audio
    every = np.ones(len(keys), dtype=bool)
    variants = (("query and table: all windows", every, every),
                (f"query: windows with >= {min_audio:g} s of audio, table: all windows", full, every),
                (f"query and table: windows with >= {min_audio:g} s of audio", full, full))  # fmt: skip
    for name, query_mask, mask in variants:
        queries = clip_vectors(keys, table.values, query_mask)
        per_species: dict[str, list[tuple[float, float, float]]] = {}
        for file, q in queries.items():
            primary = by_file[file][0]
            others = np.flatnonzero(mask & (files != file))
            relevant = np.array([primary in by_file[f][1] for f in files[others]])
            if not relevant.any():
                continue  # the only clip with this species
            similarity = unit[others] @ q
            order = np.argsort(-similarity, kind="stable")
            window_p = float(relevant[order[:k]].mean())
            seen, clip_hits = set(), []
            for j in order:  # top-k distinct clips (a clip's best window)
                f = files[others[j]]
                if f not in seen:
                    seen.add(f)
                    clip_hits.append(relevant[j])
                    if len(clip_hits) == k:
                        break
            per_species.setdefault(primary, []).append((window_p, float(np.mean(clip_hits)), float(relevant.mean())))
        means = np.array([np.mean(v, axis=0) for v in per_species.values()])
        n_queries = sum(len(v) for v in per_species.values())
        print(f"precision@{k}, {name}: {len(per_species)} species, {n_queries} queries: windows {means[:, 0].mean():.3f}, "
              f"distinct clips {means[:, 1].mean():.3f}, random ranking {means[:, 2].mean():.3f} (macro over species)")  # fmt: skip
        results.append((name, *(float(x) for x in means.mean(axis=0))))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unlabeled", type=Path, required=True, help="embedding table to search (birdcall embed of unlabeled/)")
    parser.add_argument("--train", type=Path, required=True, help="embedding table of train_audio/ (queries and precision@5)")
    parser.add_argument("--data", type=Path, required=True, help="the NIPS4B folder (train_metadata.csv)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--top", type=int, default=10, help="k of recall@k")
    parser.add_argument("--precision-top", type=int, default=5, help="k of precision@k")
    parser.add_argument("--min-audio", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=25_000, help="rows of the synthetic scale test (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = read_embeddings(args.train)
    vectors = clip_vectors(train.keys, train.values)
    rng = np.random.default_rng(args.seed)
    names = sorted(vectors)
    picked = rng.choice(len(names), size=min(args.queries, len(names)), replace=False)
    queries = np.stack([vectors[names[i]] for i in picked])
    speed_and_recall(args.unlabeled, queries, args.top)
    if args.scale:
        scaled(read_embeddings(args.unlabeled).values, queries, args.scale, args.top, args.seed)
    precision_at(args.train, args.data, args.precision_top, args.min_audio)


if __name__ == "__main__":
    main()
