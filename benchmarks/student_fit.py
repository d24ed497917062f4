"""How closely a distilled student follows its teacher: on the windows it was taught on, and on unseen recordings.

Usage:
    .venv/bin/python benchmarks/student_fit.py --run runs/ss21 --student cnn-zs-r1 --labels zs-r1 \
        --teacher-scores "birdcall birdnet_mlp (birdnet_mlp zs)" --student-scores "CNN cnn_mobilenetv3_large (cnn_distill zs-r1)" [--folds 0,1]

For each fold ``k`` of a ``self_training.py`` run in the soundscape benchmark's folder ``RUN``:

- **taught** windows: the unlabelled recordings the student trained on. The teacher's probabilities are the
  fold's pseudo-label file (``RUN/pseudo_labels/LABELS/fold<k>.parquet``); the student's are computed here with
  ``birdcall pseudo-label`` (:func:`birdcall.infer.pseudo_labels.pseudo_label`, resumable) into
  ``RUN/student_fit/STUDENT/fold<k>.parquet``. Windows holding less than 1 s of audio are left out, as training
  left them out (``pseudo.min_seconds``);
- **unseen** windows: the fold's continuous recordings of the benchmark, both models' scores as the benchmark
  saved them (``RUN/scores/<system>_fold<k>.csv``).

Per set it prints the student's mean binary cross-entropy against the teacher's probabilities (the distillation
loss it was trained on), the correlation of their logits, and the student's cmAP when the teacher's decisions
(``p >= 0.5``) are taken as the truth. A student that follows its teacher far better on the taught windows than
on unseen ones has learnt its transfer set, not the teacher: more transfer windows would help more than a better
teacher.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nips4b_soundscape_cv import score_slug

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_UNLABELED = REPO_ROOT.parent / "shared" / "data" / "nips4b" / "unlabeled"
EPS = 1e-6


def agreement(teacher: np.ndarray, student: np.ndarray) -> dict:
    """Student ``(N, C)`` probabilities against the teacher's: BCE on the soft targets, logit correlation, and the
    cmAP of the student on the teacher's decisions (species with a decision only)."""
    from birdcall.metrics import score_arrays

    t = np.clip(teacher.astype(np.float64), EPS, 1 - EPS)
    s = np.clip(student.astype(np.float64), EPS, 1 - EPS)
    bce = float(-(t * np.log(s) + (1 - t) * np.log1p(-s)).mean())
    floor = float(-(t * np.log(t) + (1 - t) * np.log1p(-t)).mean())  # the BCE of the teacher against itself
    lt, ls = np.log(t / (1 - t)).ravel(), np.log(s / (1 - s)).ravel()
    decisions = (teacher >= 0.5).astype(np.int64)
    scored = decisions.any(axis=0)
    cmap = float(score_arrays(decisions[:, scored], student[:, scored].astype(np.float64))["cmap"]) if scored.any() else float("nan")
    return {"windows": len(t), "bce": bce, "bce_floor": floor, "logit_r": float(np.corrcoef(lt, ls)[0, 1]), "teacher_positives": int(decisions.sum()),
            "cmap_on_teacher": cmap}  # fmt: skip


def taught(run: Path, student: str, labels: str, k: int, unlabeled: Path, threads: int) -> tuple[np.ndarray, np.ndarray]:
    from birdcall.infer.pseudo_labels import pseudo_label, read_pseudo_labels
    from birdcall.layout import RunLayout
    from birdcall.train.config import PseudoLabelConfig
    from birdcall.train.soft_labels import _durations  # the recording lengths training's min_seconds filter reads

    out = run / "student_fit" / student / f"fold{k}.parquet"
    pseudo_label([RunLayout(run / student).fold(k).root], [unlabeled], out, threads=threads, show_progress=False)
    teacher = read_pseudo_labels(run / "pseudo_labels" / labels / f"fold{k}.parquet", audio_root=unlabeled)
    mine = read_pseudo_labels(out, audio_root=unlabeled)
    key = lambda table: [(str(f), round(float(s), 3)) for f, s in zip(table.files, table.start)]  # noqa: E731
    order = {w: i for i, w in enumerate(key(mine))}
    rows = [order[w] for w in key(teacher)]
    codes = list(teacher.labels.codes)
    columns = [list(mine.labels.codes).index(c) for c in codes]
    durations, min_seconds = _durations(teacher.files), PseudoLabelConfig().min_seconds  # the recipe's default, 1 s
    keep = np.array([durations[f] - s >= min_seconds for f, s in zip(teacher.files, teacher.start)])
    return teacher.probs[keep], mine.probs[rows][:, columns][keep]


def unseen(run: Path, teacher_system: str, student_system: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    t = pd.read_csv(run / "scores" / f"{score_slug(teacher_system)}_fold{k}.csv").set_index("row_id")
    s = pd.read_csv(run / "scores" / f"{score_slug(student_system)}_fold{k}.csv").set_index("row_id").reindex(t.index)
    codes = [c for c in t.columns if c in s.columns]
    return t[codes].to_numpy(), s[codes].to_numpy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--student", required=True, help="the student's K-fold run folder name in RUN (e.g. cnn-zs-r1)")
    p.add_argument("--labels", required=True, help="the pseudo-label folder name in RUN/pseudo_labels (e.g. zs-r1)")
    p.add_argument("--teacher-scores", required=True, help="the teacher's system name in the benchmark table")
    p.add_argument("--student-scores", required=True, help="the student's system name in the benchmark table")
    p.add_argument("--folds", default="0,1,2,3,4")
    p.add_argument("--unlabeled", type=Path, default=DEFAULT_UNLABELED)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    rows = []
    for k in (int(f) for f in args.folds.split(",")):
        for name, (t, s) in (("taught", taught(args.run, args.student, args.labels, k, args.unlabeled, args.threads)),
                             ("unseen", unseen(args.run, args.teacher_scores, args.student_scores, k))):  # fmt: skip
            rows.append({"fold": k, "set": name, **agreement(t, s)})
    table = pd.DataFrame(rows)
    print(table.round(3).to_markdown(index=False))
    means = table.groupby("set")[["windows", "bce", "bce_floor", "logit_r", "cmap_on_teacher"]].mean()
    print("\nmean over folds:\n" + means.round(3).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
