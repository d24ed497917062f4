"""Iterated self-training on NIPS4B, scored by the soundscape benchmark: teacher -> pseudo-labels -> student -> ...

Usage:
    .venv/bin/python benchmarks/self_training.py --teacher RUN [--teacher RUN ...] [--rounds 2] [--only-fold K]
        [--config src/birdcall/recipes/cnn_distill.yaml] [--next ensemble|student] [--out runs/nips4b_soundscape]
        [--unlabeled ../shared/data/nips4b/unlabeled] [--tag st] [key=value ...]

Each round ``r`` (1, 2, ...), for every fold ``k``:

1. ``birdcall pseudo-label`` (:func:`birdcall.infer.pseudo_labels.pseudo_label`) labels every window of the
   unlabelled recordings with round ``r``'s teachers, each fold with its *own* models (``TEACHER/fold<k>``: they
   never saw fold ``k``'s validation clips, so the student's score stays out-of-fold) ->
   ``OUT/pseudo_labels/<tag>-r<r>/fold<k>.parquet``;
2. the student recipe (``--config``, e.g. the CPU CNN) trains on the fold's labelled clips plus those windows
   (``pseudo.labels=...fold{fold}.parquet``) and is scored on the fold's continuous recordings by
   ``nips4b_soundscape_cv.py`` (``--systems cnn --tag <tag>-r<r>``), whose table gets the row.

Round 1's teachers are ``--teacher`` runs (e.g. the ``birdnet_finetune`` and ``birdnet_mlp`` runs of the
soundscape benchmark: the same folds). The next round's teachers are the first round's plus this round's student
(``--next ensemble``: a BirdNET-based + CNN teacher ensemble, averaged per window; the first teachers' scores
are reused from the previous round's state, not computed again) or the student alone (``--next student``:
classic self-training). With ``--refine-epochs N`` the rounds after the first fine-tune the previous student
(``init_from``) for N epochs instead of training from scratch. Wall time of every stage is printed and kept in
``OUT/self_training-<tag>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "nips4b"


def _soundscape_cv():
    spec = importlib.util.spec_from_file_location("nips4b_soundscape_cv", Path(__file__).with_name("nips4b_soundscape_cv.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reuse_teacher_scores(previous: Path, out: Path, count: int) -> None:
    """Start ``out``'s state with the first ``count`` teachers' finished score runs of ``previous`` (the same
    teachers in the same positions: their runs are complete there, so the next round does not score them again;
    ``pseudo_label`` checks each run's settings, model digest included, before reusing it)."""
    import shutil

    from birdcall.infer.pseudo_labels import state_dir

    source, target = state_dir(previous), state_dir(out)
    for i in range(count):
        for name in (f"teacher{i}.parquet", f".teacher{i}.parquet.parts"):
            src, dst = source / name, target / name
            if src.exists() and not dst.exists():
                target.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="student recipe overrides key=value")
    p.add_argument("--teacher", action="append", type=Path, required=True, help="a K-fold run folder (TEACHER/fold<k>/best.safetensors); repeat for an ensemble")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--first-round", type=int, default=1, help="skip the rounds before this one (their students must exist)")
    p.add_argument("--next", choices=("ensemble", "student"), default="ensemble", help="teachers of the next round: first teachers + student, or the student")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "src" / "birdcall" / "recipes" / "cnn_distill.yaml")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--unlabeled", type=Path, default=None, help="unlabelled recordings (default: DATA/unlabeled)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "nips4b_soundscape")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-fold", type=int, default=None)
    p.add_argument("--tag", default="st")
    p.add_argument("--refine-epochs", type=int, default=None,
                   help="rounds after the first start from the previous round's student (init_from) and train this many epochs (default: from scratch, the recipe's epochs)")
    p.add_argument("--refine-lr", type=float, default=None, help="with --refine-epochs: the learning rate of those rounds (default: the recipe's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from birdcall.infer.pseudo_labels import pseudo_label
    from birdcall.layout import BEST, FOLD_PREFIX, RunLayout

    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    unlabeled = args.unlabeled or args.data / "unlabeled"
    folds = [args.only_fold] if args.only_fold is not None else list(range(args.folds))
    for teacher in args.teacher:
        for k in folds:
            if not RunLayout(teacher).fold(k).best.is_file():
                raise SystemExit(f"{teacher}: no fold{k}/best.safetensors (a K-fold run of the same folds is needed)")
    bench = _soundscape_cv()
    log_path = args.out / f"self_training-{args.tag}.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {"rounds": {}}
    teachers = list(args.teacher)
    for r in range(1, args.rounds + 1):
        tag = f"{args.tag}-r{r}"
        if r < args.first_round:  # done by an earlier invocation: only its student matters, as the next teacher
            student = args.out / f"cnn-{tag}"
            teachers = [*args.teacher, student] if args.next == "ensemble" else [student]
            continue
        labels_dir = args.out / "pseudo_labels" / tag
        stages = {"teachers": [str(t) for t in teachers], "pseudo_label_seconds": {}, "train_and_score_seconds": None}
        for k in folds:
            started = time.perf_counter()
            if r > 1 and args.next == "ensemble":
                reuse_teacher_scores(args.out / "pseudo_labels" / f"{args.tag}-r{r - 1}" / f"fold{k}.parquet", labels_dir / f"fold{k}.parquet",
                                     len(args.teacher))  # fmt: skip
            summary = pseudo_label([RunLayout(t).fold(k).root for t in teachers], [unlabeled], labels_dir / f"fold{k}.parquet", threads=args.threads,
                                   show_progress=not args.quiet)  # fmt: skip
            stages["pseudo_label_seconds"][k] = time.perf_counter() - started
            print(f"round {r} fold {k}: {summary.line()} ({stages['pseudo_label_seconds'][k]:.0f} s)")
        started = time.perf_counter()
        bench_args = ["--data", str(args.data), "--out", str(args.out), "--folds", str(args.folds), "--systems", "cnn", "--config", str(args.config),
                      "--tag", tag, *(["--only-fold", str(args.only_fold)] if args.only_fold is not None else []), *(["--quiet"] if args.quiet else []),
                      f"pseudo.labels={labels_dir / 'fold{fold}.parquet'}", f"pseudo.audio={unlabeled}", *args.overrides]  # fmt: skip
        if r > 1 and args.refine_epochs:  # fine-tune the last student on the new labels instead of starting again
            previous = args.out / f"cnn-{args.tag}-r{r - 1}" / f"{FOLD_PREFIX}{{fold}}" / BEST  # {fold}: filled per fold
            bench_args += [f"init_from={previous}", f"epochs={args.refine_epochs}", *([f"lr={args.refine_lr}"] if args.refine_lr else [])]
            stages["init_from"] = str(previous)
        bench.main(bench_args)
        stages["train_and_score_seconds"] = time.perf_counter() - started
        log["rounds"][str(r)] = stages
        log_path.write_text(json.dumps(log, indent=2) + "\n")
        student = args.out / f"cnn-{tag}"
        teachers = [*args.teacher, student] if args.next == "ensemble" else [student]
    print(f"wrote {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
