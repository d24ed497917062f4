"""Score ensembles of systems the soundscape benchmark already ran, from their saved window scores.

``benchmarks/nips4b_soundscape_cv.py`` writes every system's per-fold window probabilities to
``RUN/scores/<system>_fold<k>.csv``. This averages the probabilities of two or more of them per window and
species (what :class:`birdcall.infer.EnsembleScorer` does with ``method="mean"``, so the figure is the one an
ensemble of those models would get) and scores the result as the benchmark does: per fold, pooled over the
folds' windows, padded cmAP, macro AUC, birds only. No model runs; it takes a second. With ``--no-ensemble`` it
only pools systems over the folds given (``--only-fold 0,1,2``: systems screened fold by fold).

    python benchmarks/soundscape_ensemble.py --run runs/nips4b_soundscape \\
        "birdcall birdnet_mlp (birdnet_mlp 2heads)" "birdcall birdnet_finetune (birdnet_finetune ft-lr1)"
    python benchmarks/soundscape_ensemble.py --run runs/ss21 --only-fold 0,1,2 --no-ensemble \\
        "CNN cnn_mobilenetv3_large (cpu_default base)" "CNN cnn_mobilenetv3_large (cpu_default gtcc)"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nips4b_soundscape_cv import DEFAULT_DATA, REPO_ROOT, score_slug, score_windows

from birdcall.layout import DatasetLayout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("systems", nargs="+", help="system names as in the benchmark's table (two or more)")
    p.add_argument("--run", type=Path, default=REPO_ROOT / "runs" / "nips4b_soundscape")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-fold", default=None,
                   help="score these folds only, e.g. 0 or 0,1,2 (systems screened with the benchmark's --only-fold)")
    p.add_argument("--no-ensemble", action="store_true", help="only the systems themselves, pooled over the folds (one system is then enough)")
    args = p.parse_args(argv)
    try:
        fold_ids = [int(k) for k in args.only_fold.split(",")] if args.only_fold is not None else list(range(args.folds))
    except ValueError:
        raise SystemExit(f"--only-fold: expected fold numbers such as 0 or 0,1,2, got {args.only_fold!r}") from None
    if len(args.systems) < (1 if args.no_ensemble else 2):
        raise SystemExit("name two or more systems (or one with --no-ensemble)")
    taxonomy = pd.read_csv(DatasetLayout(args.data).taxonomy)
    solutions = {k: pd.read_csv(DatasetLayout(args.run / "soundscapes" / f"fold{k}").solution) for k in fold_ids}  # build_fold_soundscapes' folders
    codes = [c for c in solutions[fold_ids[0]].columns if c != "row_id"]
    taxon = taxonomy.set_index("species_code")["taxon"] if "taxon" in taxonomy else pd.Series(dtype=str)
    birds = [c for c in codes if taxon.get(c, "bird") == "bird"]
    rows, pooled_scores = [], {}
    for name in [*args.systems, *([] if args.no_ensemble else ["ensemble (mean probability)"])]:
        per_fold = []
        for k in fold_ids:
            if name.startswith("ensemble"):
                members = [pd.read_csv(args.run / "scores" / f"{score_slug(s)}_fold{k}.csv").set_index("row_id")[codes] for s in args.systems]
                scores = (sum(members) / len(members)).reset_index()
            else:
                path = args.run / "scores" / f"{score_slug(name)}_fold{k}.csv"
                if not path.is_file():
                    raise SystemExit(f"{path}: no scores of {name!r} for fold {k} (run the benchmark for it first)")
                scores = pd.read_csv(path)
            per_fold.append(scores)
        pooled = score_windows(pd.concat(solutions.values(), ignore_index=True), pd.concat(per_fold, ignore_index=True), codes, birds)
        folds = [score_windows(solutions[k], scores, codes, birds)["cmap"] for k, scores in zip(fold_ids, per_fold)]
        pooled_scores[name] = pooled
        rows.append({"system": name, **{f"fold {k}": round(v, 4) for k, v in zip(fold_ids, folds)}, "mean of folds": round(sum(folds) / len(folds), 4),
                     "pooled cmAP": round(pooled["cmap"], 4), "pooled padded cmAP": round(pooled["padded_cmap"], 4),
                     "pooled macro AUC": round(pooled["macro_auc"], 4), "birds-only cmAP": round(pooled["birds_cmap"], 4)})  # fmt: skip
    frame = pd.DataFrame(rows)
    print("| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
