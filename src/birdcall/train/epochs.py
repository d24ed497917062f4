"""What every training family shares: the run's result, targets, per-epoch seeds, the model settings a config
sets, validation metrics, the per-clip transforms, and the end of an epoch in the run folder (``metrics.csv``,
``last``/``best`` checkpoints, ``oof.csv``: :class:`birdcall.layout.ModelLayout`'s names).

:mod:`birdcall.train.loop` (the networks trained on audio) and :mod:`birdcall.train.probe` (heads on BirdNET
features) both import it; neither imports the other at module level.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from ..augment import build_waveform_augment
from ..data.dataset import ClipTable
from ..fileio import atomic_to_csv
from ..layout import ModelLayout
from ..metrics import score_arrays
from ..models import BIRDNET_FAMILIES, model_config, save_model
from .config import TrainConfig

__all__ = ["FitResult", "encode_targets", "epoch_seed", "model_overrides", "record_epoch", "validation_metrics", "waveform_augment"]


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_path: Path
    best_epoch: int
    best_metrics: dict
    history: pd.DataFrame
    model: nn.Module | None = None  # the model as trained in the last epoch (EMA weights when enabled)


def encode_targets(table: ClipTable, secondary_weight: float) -> np.ndarray:
    """Multi-hot targets: 1 for primary and other ``labels``, ``secondary_weight`` for BirdCLEF secondaries."""
    weights = [[secondary_weight if c in set(sec) else 1.0 for c in labels] for labels, sec in zip(table.frame["labels"], table.frame["secondary"])]
    return table.labels.encode(table.frame["labels"], weights=weights)


def model_overrides(config: TrainConfig) -> dict:
    """ModelConfig fields the training config sets: ``drop_rate`` always, ``pool`` and ``drop_path_rate`` when given,
    and for the ``birdnet_probe`` family the BirdNET feature settings of ``config.probe`` (and its ``hidden`` and ``heads`` when given)."""
    extra = {k: getattr(config.net, k) for k in ("pool", "drop_path_rate") if getattr(config.net, k) is not None}
    arch = model_config(config.model, num_classes=1).arch
    if arch in BIRDNET_FAMILIES:
        extra.update(birdnet_step=config.probe.step, birdnet_pool=config.probe.pool, birdnet_logits=config.probe.logits,
                     birdnet_zero_shot=config.probe.zero_shot)
        extra.update({key: getattr(config.probe, key) for key in ("hidden", "heads") if getattr(config.probe, key) is not None})
        if arch == "birdnet_finetune":
            extra.update(birdnet_tail=config.probe.tail)
    return {"drop_rate": config.net.drop_rate, **extra}


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def validation_metrics(scores: np.ndarray, targets: np.ndarray) -> dict:
    """BCE loss, padded cmAP, cmAP and macro AUC of sigmoid ``scores`` against ``targets`` (>= 0.5 is present)."""
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    bce = float(-np.mean(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)))
    metrics = score_arrays((targets >= 0.5).astype(np.int64), scores)
    return {"val_loss": bce, **{k: metrics[k] for k in ("padded_cmap", "cmap", "macro_auc")}}


def waveform_augment(config: TrainConfig, background: list[Path]):
    """Per-clip training transforms: ``config.augment.waveform``, whose ``background_noise`` without paths mixes in
    the data set's ``background`` clips."""
    return build_waveform_augment(config.augment, background=background)


def record_epoch(
    run_dir: Path, model, table: ClipTable, config: TrainConfig, *, extra: dict, row: dict, history: list[dict], best: dict,
    val_idx, val_scores: np.ndarray | None,
) -> dict:
    """End of an epoch (every family): append ``row`` to ``metrics.csv``, save ``last.safetensors`` and, when the
    epoch is the best so far, ``best.safetensors`` and ``oof.csv``. Returns the new ``best``.

    ``config.select == "last"`` keeps the final epoch: out-of-fold scores then owe nothing to the validation
    fold. Without a validation split the lowest training loss wins.
    """
    epoch = row["epoch"]
    layout = ModelLayout(run_dir)
    history.append(row)
    atomic_to_csv(pd.DataFrame(history), layout.metrics)
    save_model(model, layout.last, labels=table.labels, extra={**extra, "epoch": epoch, "metrics": row})
    score = float(epoch) if config.select == "last" else row.get("padded_cmap", -row["train_loss"])
    if score > best["score"]:
        best = {"score": float(score), "epoch": epoch, "metrics": row}
        save_model(model, layout.best, labels=table.labels, extra={**extra, "epoch": epoch, "metrics": row})
        if val_scores is not None:
            _save_oof(layout.oof, table, np.asarray(val_idx), val_scores, epoch)
    return best


def _save_oof(path: Path, table: ClipTable, val_idx: np.ndarray, scores: np.ndarray, epoch: int) -> None:
    """Out-of-fold scores of the best epoch: one row per validation clip, one column per species."""
    frame = pd.DataFrame(scores, columns=list(table.labels.codes))
    frame.insert(0, "filename", table.frame["filename"].to_numpy()[val_idx])
    frame.insert(1, "epoch", epoch)
    atomic_to_csv(frame, path, float_format="%.6g")
