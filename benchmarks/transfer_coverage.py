"""Where a distilled student falls short of its teacher: per-species AP against how often the teacher heard the
species in the unlabelled recordings the student learnt from (the transfer set).

A student learns a teacher's knowledge of a species only from windows where that knowledge shows: the labelled
clips (a handful per species here) and the pseudo-labelled windows the teacher found the species in. This reads
the soundscape benchmark's saved window scores (``RUN/scores/<system>_fold<k>.csv``, written by
``nips4b_soundscape_cv.py``) and each fold's pseudo-label file, and prints:

- per species: AP of every system pooled over the folds' windows (``birdcall.metrics.per_species_ap``, what
  cmAP averages), and its *coverage*: the windows of the transfer set where the teacher gives it a probability
  >= ``--threshold``, averaged over the folds (each fold's student learnt from its own fold's labels);
- per coverage group (``--bins``, e.g. ``2,10``: 0-2, 3-10, > 10 windows): the species, the mean AP of each
  system and the student's mean as a share of the teacher's;
- with ``--known-by SYSTEM`` (e.g. ``"BirdNET zero-shot"``, which scores 0 every species BirdNET does not know),
  the same means for the species that system scores above 0 somewhere ("known") and the others.

No model runs; it takes a few seconds.

    python benchmarks/transfer_coverage.py --run runs/ss21 --labels 'runs/ss21/pseudo_labels/zs-r1/fold{fold}.parquet' \\
        --audio ../shared/data/nips4b/unlabeled --teacher "birdcall birdnet_mlp (birdnet_mlp zs)" \\
        --student "CNN cnn_mobilenetv3_large (cnn_distill zs-r3)" "BirdNET embeddings + LR"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nips4b_soundscape_cv import REPO_ROOT, cv, score_slug

from birdcall.layout import DatasetLayout
from birdcall.metrics.scores import per_species_ap


def coverage(probs: np.ndarray, codes: list[str], species: list[str], threshold: float) -> np.ndarray:
    """Windows of one pseudo-label file where the teacher's probability of each of ``species`` is >= threshold
    (a species the file does not score: 0)."""
    index = {c: i for i, c in enumerate(codes)}
    return np.array([int((probs[:, index[s]] >= threshold).sum()) if s in index else 0 for s in species])


def groups(values: np.ndarray, bins: list[int]) -> list[str]:
    """Group names of ``values`` for upper bounds ``bins`` (``[2, 10]`` -> ``"0-2"``, ``"3-10"``, ``"> 10"``)."""
    names = [f"0-{bins[0]}", *(f"{a + 1}-{b}" for a, b in zip(bins, bins[1:])), f"> {bins[-1]}"]
    return [names[int(np.searchsorted(bins, v, side="left"))] for v in values]


def main(argv=None) -> int:
    from birdcall.infer.pseudo_labels import read_pseudo_labels

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("others", nargs="*", help="more systems to show beside teacher and student (names as in the benchmark's table)")
    p.add_argument("--run", type=Path, default=REPO_ROOT / "runs" / "nips4b_soundscape")
    p.add_argument("--teacher", required=True, help="the teacher's system name in the benchmark's table")
    p.add_argument("--student", required=True, help="the student's system name")
    p.add_argument("--labels", required=True, help="the pseudo-label file the student learnt from; {fold} is replaced by the fold number")
    p.add_argument("--audio", type=Path, required=True, help="the folder the label files' names are relative to")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-fold", default=None, help="these folds only, e.g. 0 or 0,1,2")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--bins", default="2,10", help="upper bounds of the coverage groups, increasing")
    p.add_argument("--species", action="store_true", help="also print the per-species table")
    p.add_argument("--known-by", default=None, help="also group species by whether this system ever scores them above 0")
    args = p.parse_args(argv)
    try:
        fold_ids = [int(k) for k in args.only_fold.split(",")] if args.only_fold is not None else list(range(args.folds))
        bins = sorted({int(b) for b in args.bins.split(",")})
    except ValueError:
        raise SystemExit(f"--only-fold/--bins: expected integers such as 0,1,2, got {args.only_fold!r} / {args.bins!r}") from None
    if not 0 < args.threshold <= 1:
        raise SystemExit(f"--threshold must be in (0, 1], got {args.threshold}")
    systems = [args.teacher, args.student, *args.others]
    solutions = [pd.read_csv(DatasetLayout(args.run / "soundscapes" / f"fold{k}").solution) for k in fold_ids]
    species = [c for c in solutions[0].columns if c != "row_id"]
    truth = pd.concat(solutions, ignore_index=True)
    scores = {}
    for name in [*systems, *([args.known_by] if args.known_by else [])]:
        frames = []
        for k, solution in zip(fold_ids, solutions):
            path = args.run / "scores" / f"{score_slug(name)}_fold{k}.csv"
            if not path.is_file():
                raise SystemExit(f"{path}: no scores of {name!r} for fold {k} (run the benchmark for it first)")
            frames.append(pd.read_csv(path).set_index("row_id").reindex(solution["row_id"])[species])
        scores[name] = pd.concat(frames, ignore_index=True).to_numpy(dtype=np.float64)
    seen = []
    for k in fold_ids:
        table = read_pseudo_labels(args.labels.replace("{fold}", str(k)), audio_root=args.audio)
        seen.append(coverage(table.probs, list(table.labels.codes), species, args.threshold))
    y = truth[species].to_numpy()
    rows = pd.DataFrame({"species": species, "positives": y.sum(axis=0).astype(int), "coverage": np.mean(seen, axis=0)})
    for name in systems:
        rows[name] = per_species_ap(y, scores[name])
    rows = rows[rows["positives"] > 0].reset_index(drop=True)  # cmAP leaves out species without positives
    rows["group"] = groups(rows["coverage"].to_numpy(), bins)
    if args.known_by:
        known = dict(zip(species, (scores[args.known_by] > 0).any(axis=0)))
        rows["known"] = ["known" if known[c] else "not known" for c in rows["species"]]
    if args.species:
        print(cv.markdown(rows.sort_values("coverage"), digits=3))
        print()
    order = groups(np.array([0, *[b + 1 for b in bins]]), bins)
    print(cv.markdown(_summary(rows, "group", [*order, "all"], "teacher coverage (windows)", systems, args.teacher, args.student), digits=3))
    if args.known_by:
        print()
        print(cv.markdown(_summary(rows, "known", ["known", "not known", "all"], f"known by {args.known_by}", systems, args.teacher, args.student), digits=3))
    return 0


def _summary(rows: pd.DataFrame, column: str, values: list[str], title: str, systems: list[str], teacher: str, student: str) -> pd.DataFrame:
    """Mean AP of each system over the species of each value of ``column`` ("all": every species)."""
    out = []
    for value in values:
        part = rows if value == "all" else rows[rows[column] == value]
        if not len(part):
            continue
        means = {name: float(part[name].mean()) for name in systems}
        out.append({title: value, "species": len(part), **{f"{n} AP": m for n, m in means.items()},
                    "student / teacher": means[student] / means[teacher] if means[teacher] > 0 else float("nan")})  # fmt: skip
    return pd.DataFrame(out)


if __name__ == "__main__":
    sys.exit(main())
