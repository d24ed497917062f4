"""The training loop, in small functions: ``split``, ``make_loaders``, ``train_one_epoch``, ``evaluate``, ``fit``.

``fit`` writes into a run folder: ``config.yaml`` (resolved config), ``metrics.csv`` (one row per epoch,
rewritten atomically), ``last.safetensors`` and ``best.safetensors`` (best validation padded cmAP).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..augment import sum_mix
from ..config import to_yaml
from ..data.dataset import ClipDataset, ClipTable
from ..errors import BirdcallError
from ..fileio import atomic_to_csv
from ..metrics import score_arrays
from ..models import create_model, save_model
from ..progress import make_progress
from .config import TrainConfig

__all__ = ["FitResult", "split_holdout", "encode_targets", "train_one_epoch", "evaluate", "fit"]


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_path: Path
    best_epoch: int
    best_metrics: dict
    history: pd.DataFrame


def encode_targets(table: ClipTable, secondary_weight: float) -> np.ndarray:
    """Multi-hot targets: 1 for primary and other ``labels``, ``secondary_weight`` for BirdCLEF secondaries."""
    weights = [[secondary_weight if c in set(sec) else 1.0 for c in labels] for labels, sec in zip(table.frame["labels"], table.frame["secondary"])]
    return table.labels.encode(table.frame["labels"], weights=weights)


def split_holdout(primary: list[str], *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices on the primary label; species with < 2 clips stay in training."""
    rng = np.random.default_rng(seed)
    primary = np.asarray(primary)
    train_idx, val_idx = [], []
    for code in sorted(set(primary)):
        idx = rng.permutation(np.flatnonzero(primary == code))
        n_val = int(round(len(idx) * fraction)) if len(idx) >= 2 else 0
        n_val = min(n_val, len(idx) - 1)
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    return np.sort(np.array(train_idx, dtype=int)), np.sort(np.array(val_idx, dtype=int))


def _lr_lambda(config: TrainConfig, steps_per_epoch: int):
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    total = max(warmup + 1, config.epochs * steps_per_epoch)

    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    return fn


def train_one_epoch(model, loader, optimizer, scheduler, *, config: TrainConfig, generator: torch.Generator, epoch: int, progress=None) -> float:
    """One pass over ``loader``; returns the mean loss. A non-finite loss stops with the step number."""
    model.train()
    criterion = nn.BCEWithLogitsLoss()
    total, count = 0.0, 0
    task = progress.add_task(f"epoch {epoch} train", total=len(loader), rate="") if progress else None
    for step, (waveforms, targets) in enumerate(loader):
        waveforms, targets = sum_mix(
            waveforms, targets, generator=generator, p=config.mix_p, min_gain_db=config.mix_min_gain_db, max_gain_db=config.mix_max_gain_db
        )
        logits = model(waveforms)
        loss = criterion(logits, targets)
        if not torch.isfinite(loss):
            raise BirdcallError(f"training diverged: loss is {loss.item()} at epoch {epoch}, step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(waveforms)
        count += len(waveforms)
        if progress:
            speed = progress.tasks[task].speed
            progress.update(task, advance=1, rate=f"loss {total / count:.4f}" + (f" {speed * config.batch_size:.1f} clips/s" if speed else ""))
    return total / max(count, 1)


@torch.no_grad()
def predict_loader(model, loader, *, progress=None, description: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid scores and targets for every batch of ``loader``."""
    model.eval()
    scores, targets = [], []
    task = progress.add_task(description, total=len(loader), rate="") if progress else None
    for waveforms, target in loader:
        scores.append(torch.sigmoid(model(waveforms)).numpy())
        targets.append(target.numpy())
        if progress:
            progress.update(task, advance=1)
    return np.concatenate(scores), np.concatenate(targets)


def evaluate(model, loader, *, progress=None) -> dict:
    """Validation metrics (padded cmAP, cmAP, macro AUC, BCE loss) on ``loader``."""
    scores, targets = predict_loader(model, loader, progress=progress, description="validate")
    eps = 1e-7
    clipped = np.clip(scores, eps, 1 - eps)
    bce = float(-np.mean(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)))
    metrics = score_arrays((targets >= 0.5).astype(np.int64), scores)
    return {"val_loss": bce, **{k: metrics[k] for k in ("padded_cmap", "cmap", "macro_auc")}}


def fit(table: ClipTable, config: TrainConfig, run_dir: str | Path, *, show_progress: bool = True) -> FitResult:
    """Train ``config.model`` on ``table`` with a stratified hold-out; keep the best epoch by padded cmAP."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    to_yaml(config, run_dir / "config.yaml")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    targets = encode_targets(table, config.secondary_weight)
    train_idx, val_idx = split_holdout(list(table.frame["primary_label"]), fraction=config.val_fraction, seed=config.seed)
    paths = list(table.frame["path"])
    train_paths, train_targets = [paths[i] for i in train_idx], targets[train_idx]
    background = table.background_files
    if config.background_negatives and background:  # teach the model that "no species" is an answer
        train_paths += background
        train_targets = np.concatenate([train_targets, np.zeros((len(background), targets.shape[1]), np.float32)])
    train_ds = ClipDataset(
        train_paths, train_targets, config.features, train=True, crop=config.crop, seed=config.seed,
        noise_paths=background, noise_p=config.noise_p if background else 0.0, noise_snr_db=(config.noise_min_snr_db, config.noise_max_snr_db),
    )
    loader_kwargs = {"batch_size": config.batch_size, "num_workers": config.num_workers, "persistent_workers": config.num_workers > 0}
    train_loader = torch.utils.data.DataLoader(
        train_ds, shuffle=True, drop_last=len(train_ds) > config.batch_size, generator=torch.Generator().manual_seed(config.seed), **loader_kwargs
    )
    val_loader = None
    if len(val_idx):
        val_ds = ClipDataset([paths[i] for i in val_idx], targets[val_idx], config.features, train=False, seed=config.seed)
        val_loader = torch.utils.data.DataLoader(val_ds, shuffle=False, **loader_kwargs)

    model = create_model(config.model, num_classes=len(table.labels), features=config.features, drop_rate=config.drop_rate)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config, len(train_loader)))
    extra = {"train_config_model": config.model, "num_train_clips": len(train_ds), "num_val_clips": len(val_idx)}

    history: list[dict] = []
    best_score, best_epoch, best_metrics = -1.0, 0, {}
    with make_progress(disable=not show_progress) as progress:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            train_ds.set_epoch(epoch)
            loss = train_one_epoch(model, train_loader, optimizer, scheduler, config=config, generator=generator, epoch=epoch, progress=progress)
            metrics = evaluate(model, val_loader, progress=progress) if val_loader is not None else {}
            row = {"epoch": epoch, "train_loss": loss, **metrics, "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started}
            history.append(row)
            atomic_to_csv(pd.DataFrame(history), run_dir / "metrics.csv")
            save_model(model, run_dir / "last.safetensors", labels=table.labels, extra={**extra, "epoch": epoch, "metrics": row})
            score = metrics.get("padded_cmap", -loss)  # no validation split: fall back to the lowest training loss
            if score > best_score:
                best_score, best_epoch, best_metrics = score, epoch, row
                save_model(model, run_dir / "best.safetensors", labels=table.labels, extra={**extra, "epoch": epoch, "metrics": row})
            progress.console.print(
                f"epoch {epoch}/{config.epochs}  loss {loss:.4f}"
                + "".join(f"  {k} {v:.4f}" for k, v in metrics.items())
                + f"  ({row['seconds']:.1f} s)",
                highlight=False,
            )
    return FitResult(run_dir, run_dir / "best.safetensors", best_epoch, best_metrics, pd.DataFrame(history))
