"""Soundscape-style mixtures of a fold's *training* clips, as extra transfer audio for a student (issue 17).

Usage:
    .venv/bin/python benchmarks/transfer_mixtures.py --run runs/ss21 [--only-fold K] [--passes 3]
        [--data DIR] [--config src/birdcall/recipes/cnn_distill.yaml] [--duration 60]

Issue 17 names "soundscape-style mixtures of the dev clips" beside the unlabelled recordings as audio for the
teacher to label. For each fold k of ``nips4b_soundscape_cv.py`` (the same folds: ``assign_folds`` with the
recipe's seed; the same background groups), this writes ``--passes`` sets of continuous recordings
(``birdcall.data.soundscape.assemble_soundscapes``: every training clip placed once per pass, random offsets
off the 5-s grid, overlaps, SNR against a bed of background clips) made only of the clips *outside* fold k and
the background groups *other than* k, so nothing of fold k's validation recordings enters. Each pass has its
own seed (10000 + 100 k + pass), never the seed of the validation recordings.

Output: ``RUN/transfer_mixtures/fold<k>/pass<j>/soundscapes/*.ogg`` (plus ``solution.csv``, unused by the
student: the teacher labels the windows). Then, e.g.:

    birdcall pseudo-label --teacher RUN/birdnet_mlp-zs/fold0 ../shared/data/nips4b/unlabeled \
        RUN/transfer_mixtures/fold0 --out RUN/pseudo_labels/zsmix-r1/fold0.parquet
    nips4b_soundscape_cv.py ... pseudo.labels=... pseudo.audio=/   (a root above both folders)

The recordings are made from NIPS4B (research use only): keep the run folder out of the repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _soundscape_cv():
    spec = importlib.util.spec_from_file_location("nips4b_soundscape_cv", Path(__file__).with_name("nips4b_soundscape_cv.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ss = _soundscape_cv()  # loaded once: it also loads nips4b_cv.py


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="the nips4b_soundscape_cv.py run folder")
    p.add_argument("--data", type=Path, default=ss.DEFAULT_DATA)
    p.add_argument("--config", type=Path, default=REPO_ROOT / "src" / "birdcall" / "recipes" / "cnn_distill.yaml",
                   help="recipe whose seed made the folds (as in the benchmark)")  # fmt: skip
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-fold", type=int, default=None)
    p.add_argument("--passes", type=int, default=3, help="recordings sets per fold; each places every training clip once")
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0, help="the benchmark's --seed (background groups)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from birdcall.config import from_yaml
    from birdcall.data import read_clip_table
    from birdcall.data.soundscape import SoundscapeConfig, assemble_soundscapes
    from birdcall.train import TrainConfig

    args = parse_args(argv)
    config = from_yaml(TrainConfig, args.config)
    table = read_clip_table(args.data)
    codes = list(table.labels.codes)
    folds, groups, clips_all = ss.fold_setup(args.data, table, args.folds, config.seed, args.seed)
    for k in [args.only_fold] if args.only_fold is not None else range(args.folds):
        clips = [c for c, f in zip(clips_all, folds) if f != k]
        held_out = {str(c.path) for c, f in zip(clips_all, folds) if f == k}
        backgrounds = [p for g, group in enumerate(groups) if g != k for p in group]
        # No clip or background of fold k's validation recordings may enter its transfer audio.
        assert not held_out & {str(c.path) for c in clips} and not set(groups[k]) & set(backgrounds)
        for j in range(args.passes):
            out = args.run / "transfer_mixtures" / f"fold{k}" / f"pass{j}"
            scape = SoundscapeConfig(duration=args.duration, seed=10_000 + 100 * k + j)
            solution = assemble_soundscapes(clips, backgrounds, out, species_codes=codes, config=scape, prefix=f"mix{k}p{j}")
            (out / "plan.json").write_text(json.dumps({"fold": k, "pass": j, "clips": len(clips), "backgrounds": len(backgrounds), "seed": scape.seed}) + "\n")
            print(f"fold {k} pass {j}: {len(clips)} training clips over {len(backgrounds)} background clips -> "
                  f"{len(list((out / 'soundscapes').glob('*.ogg')))} recordings, {len(solution)} windows in {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
