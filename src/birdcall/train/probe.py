"""Training a head on frozen BirdNET features (the ``birdnet_probe`` family: presets ``birdnet_probe``, ``birdnet_mlp``).

:func:`~birdcall.train.loop.fit` hands such a model here after its run-folder checks, and this writes the same
run folder as any fit (``config.yaml``, ``metrics.csv``, ``last``/``best.safetensors``, ``oof.csv``,
``train_state.pt``), so K-fold runs, ``summary.csv``, ``predict``/``analyze``/``evaluate`` and ensembles work
unchanged.

Training windows, each turned into BirdNET features once (:class:`birdcall.birdnet.store.FeatureStore`):

- ``probe.clips``: every training clip as a whole (:func:`birdcall.birdnet.clip_features`, the path
  ``birdcall embed`` takes), with its clip labels;
- the data set's ``background/`` clips as all-negative windows (``data.background_negatives``);
- ``probe.views`` soundscape-style windows per training clip (:class:`birdcall.data.mixed_windows.MixedWindowDataset`
  with ``TrainConfig.mix`` settings, always mixed: the clip at a random offset with other training clips over
  background beds, labels from ``events.csv`` call times), view ``v`` drawn as epoch ``v + 1`` of that dataset, so
  the same data and seed give the same windows. Only training clips are ever mixed in (no validation leakage).

Validation uses the validation clips' whole-clip features, as ``evaluate`` and the out-of-fold scores of every
other family use whole clips.

With ``probe.zero_shot`` the head trains alone on the embeddings as above, and BirdNET's own classifier joins
the output for the species it knows (:class:`birdcall.models.BirdNetProbe`); validation scores the clips that
way (their features then carry BirdNET's class logits).

With ``heads: 2`` (``probe.heads``) the model averages two heads: one fitted on the clips and background
negatives only, one on every window including the views (on the NIPS4B soundscape benchmark the average of a
clip-trained and a view-trained probe beat either alone).

The head is fitted with torch (AdamW, the configured loss and class weights, minibatches of ``batch_size``,
``epochs`` passes over the cached features), not scikit-learn: the result is a birdcall model file like any
other, so it ensembles with the CNNs, goes through the streaming engine and can be a distillation teacher.
BirdNET dominates the cost (a few minutes per fold on 2 cores for NIPS4B with 3 views); the head trains in
seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..audio import load
from ..augment.legacy import flat_repr
from ..birdnet import NON_COMMERCIAL_NOTE, BirdNetFeatureConfig, clip_features, shared_model, window_features
from ..birdnet.model import BIRDNET_LICENSE, BIRDNET_VERSION, species_index
from ..birdnet.port import shared_cut
from ..birdnet.store import FeatureStore, file_key
from ..data.dataset import ClipTable
from ..data.mixed_windows import MemoryReader, MixedWindowDataset
from ..data.soundscape import clip_calls
from ..errors import BirdcallError
from ..layout import ModelLayout
from ..models import create_model
from ..progress import make_progress
from .checkpoint import save_train_state
from .config import TrainConfig
from .epochs import FitResult, encode_targets, epoch_seed, model_overrides, record_epoch, validation_metrics, waveform_augment
from .losses import build_loss, class_weights
from .optim import build_optimizer, build_scheduler, model_param_groups

__all__ = ["fit_probe", "probe_training_features"]

_VIEW_BATCH = 32  # windows per BirdNET call while making views (memory: 32 x 5 s of audio)


def _birdnet_key(birdnet, config: BirdNetFeatureConfig, sample_rate: int) -> dict:
    return {"birdnet": getattr(birdnet, "digest", type(birdnet).__name__), "features": dataclasses.asdict(config), "sample_rate": sample_rate}


def _clip_matrix(paths: list[Path], *, store: FeatureStore, birdnet, config: BirdNetFeatureConfig, sample_rate: int, progress=None, label: str) -> np.ndarray:
    """Whole-clip features of ``paths`` ``(len(paths), D)``, one cache entry per file."""
    base = _birdnet_key(birdnet, config, sample_rate)
    task = progress.add_task(f"BirdNET features: {label}", total=len(paths), rate="") if progress else None
    rows = []
    for path in paths:
        compute = lambda path=path: clip_features(load(path, sample_rate=sample_rate), sample_rate, birdnet, config)  # noqa: E731
        rows.append(store.get({"kind": "clip", "file": file_key(path), **base}, compute))
        if progress:
            progress.update(task, advance=1)
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def _view_matrix(dataset: MixedWindowDataset, view: int, *, store: FeatureStore, key: dict, birdnet, config: BirdNetFeatureConfig,
                 sample_rate: int, progress=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Features and targets of view ``view`` (epoch ``view + 1`` of ``dataset``), cached as one array."""
    width = len(dataset.codes)

    def compute() -> np.ndarray:
        dataset.set_epoch(view + 1)
        task = progress.add_task(f"BirdNET features: view {view + 1}", total=len(dataset), rate="") if progress else None
        out = []
        for start in range(0, len(dataset), _VIEW_BATCH):
            items = [dataset.item(i) for i in range(start, min(start + _VIEW_BATCH, len(dataset)))]
            windows = np.stack([y for y, _, _ in items])
            features = window_features(windows, sample_rate=sample_rate, model=birdnet, config=config)
            out.append(np.concatenate([features, np.stack([t for _, t, _ in items])], axis=1))
            if progress:
                progress.update(task, advance=len(items))
        return np.concatenate(out)

    both = store.get({**key, "view": view}, compute)
    return both[:, :-width], both[:, -width:]


def probe_training_features(
    table: ClipTable, config: TrainConfig, train_idx: np.ndarray, *, targets: np.ndarray, birdnet_config: BirdNetFeatureConfig,
    birdnet=None, store: FeatureStore | None = None, progress=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The head's training set ``(features (n, D), targets (n, C), is_view (n,))``: clips, background negatives and
    views (module docstring); ``is_view`` marks the soundscape-style windows."""

    birdnet = birdnet if birdnet is not None else shared_model()
    store = store or FeatureStore()
    rate = config.features.sample_rate
    paths = list(table.frame["path"])
    train_paths = [paths[i] for i in train_idx]
    background = list(table.background_files)
    xs, ys, views = [], [], []
    if config.probe.clips:
        xs.append(_clip_matrix(train_paths, store=store, birdnet=birdnet, config=birdnet_config, sample_rate=rate, progress=progress, label="training clips"))
        ys.append(targets[train_idx])
        views.append(False)
    if config.data.background_negatives and background:
        xs.append(_clip_matrix(background, store=store, birdnet=birdnet, config=birdnet_config, sample_rate=rate, progress=progress, label="background clips"))
        ys.append(np.zeros((len(background), targets.shape[1]), np.float32))
        views.append(False)
    if config.probe.views:
        calls = clip_calls(table)
        train_calls = [calls[i] for i in train_idx]
        mix = dataclasses.replace(config.mix, p=1.0)
        dataset = MixedWindowDataset(
            train_paths, targets[train_idx], train_calls, species_codes=table.labels.codes, backgrounds=background, features=config.features,
            config=mix, read=MemoryReader(rate), crop=config.data.crop, seed=config.seed, augment=waveform_augment(config, background),
        )  # fmt: skip
        key = {
            "kind": "views", **_birdnet_key(birdnet, birdnet_config, rate), "clips": [file_key(p) for p in train_paths],
            "targets": _digest(targets[train_idx]), "calls": [[list(c) for c in cs] for cs in train_calls],
            "backgrounds": [file_key(p) for p in background], "mix": dataclasses.asdict(mix), "crop": config.data.crop, "seed": config.seed,
            "window": config.features.clip_duration, "augment": _augment_key(config.augment),
        }  # fmt: skip
        for view in range(config.probe.views):
            x, y = _view_matrix(dataset, view, store=store, key=key, birdnet=birdnet, config=birdnet_config, sample_rate=rate, progress=progress)
            xs.append(x)
            ys.append(y)
            views.append(True)
    is_view = np.concatenate([np.full(len(x), view) for x, view in zip(xs, views)])
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32), is_view


def _digest(array: np.ndarray) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(repr((a.shape, str(a.dtype))).encode() + a.tobytes()).hexdigest()


def _embedded(model, cut: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Pooled tail embeddings of cut tensors (``birdnet_finetune``), without gradient, in batches."""
    with torch.inference_mode():
        out = [model.embed(cut[i : i + batch]) for i in range(0, len(cut), batch)]
    return torch.cat(out) if out else torch.zeros(0, model.num_inputs)


def _param_groups(model, config: TrainConfig) -> list[dict]:
    """Parameter groups: weight decay off for biases (``no_decay_bias_norm``), and a ``birdnet_finetune`` tail at
    ``probe.tail_lr * lr`` (the scheduler scales every group's own rate)."""
    groups = model_param_groups(model, config.optim.weight_decay, no_decay_bias_norm=config.optim.no_decay_bias_norm)
    tail = {id(p) for p in getattr(model, "tail", nn.Module()).parameters()}
    out = []
    for group in groups:
        for in_tail in (False, True):
            params = [p for p in group["params"] if (id(p) in tail) == in_tail]
            if params:
                out.append({**group, "params": params, **({"lr": config.optim.lr * config.probe.tail_lr} if in_tail else {})})
    return out


def _zero_shot_index(model, table: ClipTable, birdnet) -> np.ndarray:
    """BirdNET's class of each species of ``table`` (by scientific name), set on ``model``. A taxonomy without
    scientific names, or one BirdNET knows none of, gives a warning and a model whose head scores alone (a
    recipe that asks for the blend still trains on a data set of frogs or of unnamed species)."""
    names = table.labels.scientific_names
    index = species_index(birdnet.labels, names) if names else np.full(len(table.labels), -1, dtype=np.int64)
    if not (index >= 0).any():
        why = "taxonomy.csv has no scientific_name column" if not names else f"BirdNET knows none of the {len(names)} species by scientific name"
        warnings.warn(f"probe.zero_shot: {why}; the head scores alone", stacklevel=3)
    model.set_zero_shot_index(index)
    return index


def _row_groups(is_view: np.ndarray, heads: int) -> list[np.ndarray]:
    """The training rows of each head: one head learns from every row; with several, the first learns from the
    clip rows only (never a view) and the others from every row."""
    every = np.arange(len(is_view))
    return [every] if heads == 1 else [np.flatnonzero(~is_view), *([every] * (heads - 1))]


def fit_probe(
    table: ClipTable, config: TrainConfig, run_dir: Path, *, train_idx: np.ndarray, val_idx: np.ndarray, state: dict | None,
    fingerprint: str, show_progress: bool = True, store: FeatureStore | None = None,
):  # fmt: skip
    """Train a ``birdnet_probe`` head (called by :func:`birdcall.train.loop.fit`, which has checked ``run_dir``).

    Returns:
        A :class:`~birdcall.train.loop.FitResult`.

    Raises:
        MissingExtraError: the BirdNET extra is not installed (one line naming ``make birdnet``).
        BirdcallError: the loss became non-finite.
    """
    torch.manual_seed(config.seed)  # the thread count is fit's (set for the run, restored after it)
    # the missing extra is reported before any work (building a birdnet_finetune model reads BirdNET's file)
    model = create_model(config.model, num_classes=len(table.labels), features=config.features, **model_overrides(config))
    tail = getattr(model, "tail", None)  # birdnet_finetune: features are the frozen part's output, the tail trains
    birdnet = shared_cut(model.config.birdnet_tail) if tail is not None else shared_model()
    targets = encode_targets(table, config.data.secondary_weight)
    paths = list(table.frame["path"])
    rate = config.features.sample_rate
    store = store or FeatureStore()
    zero_shot = _zero_shot_index(model, table, birdnet) if model.zero_shot else None
    started = time.perf_counter()
    with make_progress(disable=not show_progress) as progress:
        x_train, y_train, is_view = probe_training_features(
            table, config, train_idx, targets=targets, birdnet_config=model.birdnet_config, birdnet=birdnet, store=store, progress=progress
        )
        # validated as it will score: with BirdNET's class logits when they join the output (model.scoring_config)
        x_val = _clip_matrix([paths[i] for i in val_idx], store=store, birdnet=birdnet, config=model.scoring_config, sample_rate=rate,
                             progress=progress, label="validation clips")  # fmt: skip
    y_val = targets[val_idx]
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    head_xt, head_val = xt, x_val  # what the head alone trains and validates on
    if tail is not None:  # the pooled embeddings of the untouched tail: standardisation, and the head-only epochs
        head_xt, head_val = _embedded(model, xt), _embedded(model, torch.from_numpy(x_val)).numpy()
    feature_seconds = time.perf_counter() - started
    weights = class_weights(y_train, power=config.loss.class_weight_power) if config.loss.class_weight_power else None
    criterion = build_loss(
        config.loss.loss, label_smoothing=config.loss.label_smoothing, class_weights=weights, gamma=config.loss.focal_gamma, alpha=config.loss.focal_alpha,
        bce_weight=config.loss.bce_weight, focal_weight=config.loss.focal_weight,
    )  # fmt: skip
    optimizer = build_optimizer(_param_groups(model, config), name=config.optim.optimizer, lr=config.optim.lr, weight_decay=config.optim.weight_decay,
                                momentum=config.optim.momentum)  # fmt: skip
    groups = _row_groups(is_view, 1 + len(model.extra_heads))
    for head, rows in enumerate(groups):  # each head is standardised on, and starts from the class frequencies of, its own rows
        model.set_standardization(head_xt[rows].numpy(), head=head)
        model.set_prior(y_train[rows], head=head)
    steps = sum(math.ceil(len(rows) / config.batch_size) for rows in groups)
    scheduler = build_scheduler(optimizer, warmup_steps=int(config.optim.warmup_epochs * steps), total_steps=config.epochs * steps, min_lr_ratio=config.optim.min_lr_ratio)
    extra = {
        "num_train_clips": int(len(train_idx)), "num_train_windows": int(len(xt)), "num_val_clips": int(len(val_idx)),
        "backbone": {"name": getattr(birdnet, "name", "BirdNET"), "version": getattr(birdnet, "version", BIRDNET_VERSION),
                     "license": getattr(birdnet, "license", BIRDNET_LICENSE),
                     "note": NON_COMMERCIAL_NOTE if getattr(birdnet, "license", BIRDNET_LICENSE) == BIRDNET_LICENSE else None,
                     "digest": getattr(birdnet, "digest", None)},
    }  # fmt: skip
    if zero_shot is not None:
        extra["zero_shot"] = {"weight": model.zero_shot, "species_known": int((zero_shot >= 0).sum()), "species": len(zero_shot)}
    history: list[dict] = []
    best = {"score": -np.inf, "epoch": 0, "metrics": {}}
    start_epoch = 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"]) + 1
    with make_progress(disable=not show_progress) as progress:
        for epoch in range(start_epoch, config.epochs + 1):
            tick = time.perf_counter()
            torch.manual_seed(epoch_seed(config.seed, epoch))
            generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
            model.train()
            tail_on = tail is not None and epoch > config.epochs - config.probe.tail_epochs
            inputs = xt if tail is None or tail_on else head_xt
            total, seen, step = 0.0, 0, 0
            # Each head takes its own passes over its own rows (heads > 1: the first sees the clips only), with
            # the gradient of that head alone: Adam's step does not shrink with the loss, so a head trained on a
            # share of mixed batches would get as many steps as the views give it and overfit the clips.
            for head, rows in enumerate(groups):
                order = torch.from_numpy(rows)[torch.randperm(len(rows), generator=generator)]
                for start in range(0, len(order), config.batch_size):
                    idx = order[start : start + config.batch_size]
                    logits = model(inputs[idx]) if len(groups) == 1 else model.one_head(inputs[idx], head)
                    loss = criterion(logits, yt[idx])
                    if not torch.isfinite(loss):
                        raise BirdcallError(f"training diverged: loss is {loss.item()} at epoch {epoch}, step {step} (lower lr or enable grad_clip)")
                    optimizer.zero_grad(set_to_none=True)  # the other heads keep no gradient: AdamW leaves them as they are
                    loss.backward()
                    if config.grad_clip:
                        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], config.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                    step += 1
            model.eval()
            metrics, val_scores = {}, None
            if len(x_val):
                with torch.inference_mode():
                    x = torch.from_numpy(x_val if tail is None or tail_on else head_val)
                    val_scores = torch.cat([torch.sigmoid(model(x[i : i + 256])) for i in range(0, len(x), 256)]).numpy()
                metrics = validation_metrics(val_scores, y_val)
            seconds = time.perf_counter() - tick + (feature_seconds if epoch == start_epoch else 0.0)
            row = {"epoch": epoch, "train_loss": total / seen, **metrics, "lr": scheduler.get_last_lr()[0], "seconds": seconds}
            best = record_epoch(run_dir, model, table, config, extra=extra, row=row, history=history, best=best, val_idx=val_idx, val_scores=val_scores)
            save_train_state(ModelLayout(run_dir).state, model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                             ema=None, scaler=None, epoch=epoch, history=history, best=best, fingerprint=fingerprint)  # fmt: skip
            if epoch == config.epochs or epoch % 10 == 0:
                progress.console.print(
                    f"epoch {epoch}/{config.epochs}  loss {row['train_loss']:.4f}" + "".join(f"  {k} {v:.4f}" for k, v in metrics.items()), highlight=False
                )
    return FitResult(run_dir, ModelLayout(run_dir).best, int(best["epoch"]), best["metrics"], pd.DataFrame(history), model)


def _augment_key(augment) -> str:
    """The cache key part of the training augmentation, written as the flat TrainConfig wrote it (``noise_p``,
    its SNR range, then the flat augment fields), so the views cached before the configs were nested, and before
    augment became lists, are found again. Lists the flat layout cannot express have a key of their own."""
    flat = augment.to_flat()
    if flat is None:
        return repr(augment)
    if flat["background_noise_paths"]:  # files of its own: the data set's background noise was off
        return f"(0.0, 3.0, 30.0, {flat_repr(flat)})"
    low, high = flat["background_noise_snr_db"]
    rest = {**flat, "background_noise_p": 0.0, "background_noise_snr_db": (3.0, 30.0)}
    return f"({flat['background_noise_p']!r}, {low!r}, {high!r}, {flat_repr(rest)})"
