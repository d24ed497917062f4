"""The training loop, in small functions: data loaders, ``train_one_epoch``, ``evaluate``, ``fit``.

``fit`` writes into a run folder: ``config.yaml`` (resolved config), ``metrics.csv`` (one row per epoch,
rewritten atomically), ``last.safetensors`` and ``best.safetensors`` (best validation padded cmAP),
``oof.csv`` (validation scores of the best epoch, for evaluation and ensembling) and ``train_state.pt``
(everything needed to resume exactly, and the fingerprint of config and data a resume must match; see
:mod:`birdcall.train.rundir`, which also decides when a new run may write into a folder; the names are
:class:`birdcall.layout.ModelLayout`'s). Under ``torchrun`` it trains with DistributedDataParallel: every
rank trains on its share of each epoch, rank 0 evaluates and writes.

What the BirdNET probe trainer shares with this loop (targets, epoch seeds, the end-of-epoch record) is in
:mod:`birdcall.train.epochs`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._threads import torch_threads
from ..augment import build_batch_augment, build_spectrogram_augment, sum_mix
from ..config import to_yaml
from ..data.cache import AudioCache
from ..data.dataset import ClipDataset, ClipTable, check_clip_audio
from ..data.mixed_windows import MemoryReader, MixedWindowDataset
from ..data.soundscape import clip_calls
from ..errors import BirdcallError, ParameterError
from ..fileio import hash_files
from ..layout import ModelLayout
from ..models import BIRDNET_FAMILIES, clip_logits, create_model, model_config
from ..progress import make_progress
from .checkpoint import load_train_state, save_train_state
from .config import TrainConfig
from .ema import ModelEma
from .epochs import FitResult, encode_targets, epoch_seed, model_overrides, record_epoch, validation_metrics, waveform_augment
from .losses import build_loss, class_weights, distillation_loss
from .optim import build_optimizer, build_scheduler
from .rundir import check_resume, clear_run, cv_run_files, refuse_existing_run, run_fingerprint

__all__ = ["FitResult", "encode_targets", "evaluate", "fit", "record_epoch", "resolve_device", "split_holdout", "train_one_epoch"]


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ParameterError(f"device {name!r} is not a torch device ({' '.join(str(err).split())})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {name!r} requested but CUDA is not available")
    return device


def _autocast(device: torch.device, enabled: bool):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def train_one_epoch(
    model, loader, optimizer, scheduler, criterion, *, config: TrainConfig, generator: torch.Generator, epoch: int,
    device: torch.device, ema: ModelEma | None = None, scaler=None, progress=None, pseudo_per_batch: int = 0, teacher=None,
    distiller=None,
) -> float:
    """One pass over ``loader``; returns the mean loss. A non-finite loss stops with the epoch and step.

    ``pseudo_per_batch``: the last rows of each batch are pseudo-labelled windows (soft targets, loss weight
    ``config.pseudo.weight``). ``teacher``: an :class:`~birdcall.train.soft_labels.OnlineTeacher` whose logits on
    the labelled rows enter the loss with weight ``config.distill.weight`` (:func:`soft_label_loss`).
    ``distiller``: an :class:`~birdcall.train.soft_labels.EmbeddingDistiller` whose term on the embedding targets
    the pseudo-labelled windows carry (a third element of the batch) is added to the loss.

    Per batch: sum-mix (union labels), the waveform-domain batch stage of ``config.augment`` (mixup/cutmix),
    then, when a spectrogram stage is configured (masks, spectrogram cutmix), the front end runs here, the
    stage is applied, and the model continues from the augmented features.
    """
    model.train()
    batch_augment = build_batch_augment(config.augment)
    spec_augment = build_spectrogram_augment(config.augment)
    frontend = _unwrap(model).frontend
    total, count = 0.0, 0
    task = progress.add_task(f"epoch {epoch} train", total=len(loader), rate="") if progress else None
    for step, (waveforms, targets, *rest) in enumerate(loader):
        embeddings = rest[0].to(device) if rest and distiller is not None else None
        # A batch is labelled items then `pseudo_per_batch` pseudo-labelled windows (PseudoBatchSampler): each part
        # is mixed within itself, so hard and soft labels never meet in one item.
        n_pseudo = pseudo_per_batch if 0 < pseudo_per_batch < len(waveforms) else 0
        parts = [(waveforms[: len(waveforms) - n_pseudo], targets[: len(targets) - n_pseudo])]
        if n_pseudo:
            parts.append((waveforms[-n_pseudo:], targets[-n_pseudo:]))
        mixed = []
        for i, (part_waveforms, part_targets) in enumerate(parts):
            if i == 1 and not config.pseudo.augment:  # pseudo-labelled windows as the teacher scored them
                mixed.append((part_waveforms, part_targets))
                continue
            part_waveforms, part_targets = sum_mix(
                part_waveforms, part_targets, generator=generator, p=config.data.mix_p, min_gain_db=config.data.mix_min_gain_db, max_gain_db=config.data.mix_max_gain_db
            )
            mixed.append(batch_augment(part_waveforms, part_targets, generator=generator))
        waveforms, targets = (torch.cat([m[0] for m in mixed]), torch.cat([m[1] for m in mixed])) if n_pseudo else mixed[0]
        n_labelled = len(waveforms) - n_pseudo
        # The online teacher sees the waveforms as augmented so far (spectrogram masks below are the student's alone).
        teacher_logits = teacher(waveforms[:n_labelled]).to(device) if teacher is not None else None
        waveforms, targets = waveforms.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if len(spec_augment.transforms):
            with torch.no_grad():  # the front end has no trainable parameters
                features = frontend(waveforms)
            features, targets = features.cpu(), targets.cpu()
            cut = len(features) if config.pseudo.augment or not n_pseudo else n_labelled  # unaugmented pseudo rows keep theirs
            head = spec_augment(features[:cut], targets[:cut], generator=generator)
            features, targets = torch.cat([head[0], features[cut:]]), torch.cat([head[1], targets[cut:]])
            waveforms, targets = features.to(device), targets.to(device)  # the model takes features as they are
        with _autocast(device, config.amp):  # with embedding targets, one pass gives the logits and the pooled features
            logits, pooled = distiller(_unwrap(model), waveforms) if embeddings is not None else (clip_logits(model(waveforms)), None)
        loss = soft_label_loss(criterion, logits.float(), targets, n_pseudo=n_pseudo, config=config, teacher_logits=teacher_logits)
        if embeddings is not None:
            loss = loss + distiller.loss(pooled, embeddings, rows=len(logits))
        if not torch.isfinite(loss):
            raise BirdcallError(f"training diverged: loss is {loss.item()} at epoch {epoch}, step {step} (lower lr or enable grad_clip)")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(_unwrap(model))
        total += loss.item() * len(waveforms)
        count += len(waveforms)
        if progress:
            speed = progress.tasks[task].speed
            progress.update(task, advance=1, rate=f"loss {total / count:.4f}" + (f" {speed * config.batch_size:.1f} clips/s" if speed else ""))
    return total / max(count, 1)


def soft_label_loss(criterion, logits: torch.Tensor, targets: torch.Tensor, *, n_pseudo: int, config: TrainConfig,
                    teacher_logits: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The training loss of a batch whose last ``n_pseudo`` rows are pseudo-labelled windows.

    Without pseudo-labelled rows or a teacher it is ``criterion(logits, targets)``. Otherwise every row's term is
    weighted: a pseudo-labelled row ``pseudo.weight`` (its soft target in ``criterion``), a labelled row
    ``1 - distill.weight`` on its hard target plus ``distill.weight`` on the teacher's logits
    (:func:`~birdcall.train.losses.distillation_loss`); the sum is divided by the rows, as the plain mean is.
    """
    if not n_pseudo and teacher_logits is None:
        return criterion(logits, targets)
    n_labelled = len(logits) - n_pseudo
    weights = torch.ones(len(logits), dtype=logits.dtype, device=logits.device)
    weights[n_labelled:] = config.pseudo.weight
    if teacher_logits is None:
        return criterion(logits, targets, weights)
    alpha = config.distill.weight
    weights[:n_labelled] = 1.0 - alpha
    loss = criterion(logits, targets, weights)
    if n_labelled:
        distill = distillation_loss(logits[:n_labelled], teacher_logits, temperature=config.distill.temperature, kind=config.distill.loss)
        loss = loss + alpha * distill * (n_labelled / len(logits))
    return loss


@torch.no_grad()
def predict_loader(model, loader, *, device: torch.device = torch.device("cpu"), progress=None, description: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid scores and targets for every batch of ``loader``."""
    model.eval()
    scores, targets = [], []
    task = progress.add_task(description, total=len(loader), rate="") if progress else None
    for waveforms, target in loader:
        scores.append(torch.sigmoid(clip_logits(model(waveforms.to(device)))).float().cpu().numpy())
        targets.append(target.numpy())
        if progress:
            progress.update(task, advance=1)
    return np.concatenate(scores), np.concatenate(targets)


def evaluate(model, loader, *, device: torch.device = torch.device("cpu"), progress=None) -> tuple[dict, np.ndarray]:
    """Validation metrics (BCE loss, padded cmAP, cmAP, macro AUC) and the scores they were computed from."""
    scores, targets = predict_loader(model, loader, device=device, progress=progress, description="validate")
    return validation_metrics(scores, targets), scores


def _unwrap(model):
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group when launched by torchrun with several ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _datasets(table: ClipTable, config: TrainConfig, targets: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray):
    paths = list(table.frame["path"])
    cache = AudioCache(config.data.cache_dir, sample_rate=config.features.sample_rate) if config.data.cache_dir else None
    train_paths, train_targets = [paths[i] for i in train_idx], targets[train_idx]
    background = table.background_files
    if config.data.background_negatives and background:  # teach the model that "no species" is an answer
        train_paths += background
        train_targets = np.concatenate([train_targets, np.zeros((len(background), targets.shape[1]), np.float32)])
    if config.mix.p > 0:  # soundscape-style windows; background negatives have no calls and stay plain crops
        calls = clip_calls(table)
        train_calls = [calls[i] for i in train_idx] + [[] for _ in range(len(train_paths) - len(train_idx))]
        train_ds = MixedWindowDataset(
            train_paths, train_targets, train_calls, species_codes=table.labels.codes, backgrounds=background,
            features=config.features, config=config.mix, read=cache.get if cache else MemoryReader(config.features.sample_rate),
            crop=config.data.crop, seed=config.seed, augment=waveform_augment(config, background),
        )  # fmt: skip
    else:
        train_ds = ClipDataset(
            train_paths, train_targets, config.features, train=True, crop=config.data.crop, seed=config.seed,
            augment=waveform_augment(config, background), audio_cache=cache,
        )  # fmt: skip
    val_ds = None
    if len(val_idx):
        val_ds = ClipDataset([paths[i] for i in val_idx], targets[val_idx], config.features, train=False, seed=config.seed, audio_cache=cache)
    return train_ds, val_ds


def _pseudo_dataset(table: ClipTable, config: TrainConfig):
    """The pseudo-labelled windows of ``config.pseudo`` (None without) and what they came from."""
    if config.pseudo.labels is None:
        return None, None
    from .soft_labels import load_pseudo_windows

    cache = AudioCache(config.data.cache_dir, sample_rate=config.features.sample_rate) if config.data.cache_dir else None
    return load_pseudo_windows(config.pseudo, table.labels, config.features, read=cache.get if cache else MemoryReader(config.features.sample_rate),
                               augment=waveform_augment(config, table.background_files) if config.pseudo.augment else None, seed=config.seed)  # fmt: skip


def _lineage(config: TrainConfig, pseudo_source, teacher, init_report) -> dict:
    """Model-file metadata of a run trained on soft labels: its teachers (and theirs), their licences, and a
    non-commercial note when one of them is (or learnt from) a BirdNET-based model."""
    extra: dict = {}
    teachers = list(pseudo_source.teachers) if pseudo_source is not None else []
    if teacher is not None:
        teachers.append({**teacher.describe(), "use": "online distillation"})
    if config.distill.embedding_weight > 0:
        from .soft_labels import EmbeddingDistiller

        teachers.append(EmbeddingDistiller.describe())
    notes = [n for n in ([pseudo_source.note] if pseudo_source is not None else []) + [t.get("note") for t in teachers] if n]
    if teachers:
        extra["teachers"] = teachers
    if pseudo_source is not None:
        extra["pseudo_labels"] = {"file": Path(pseudo_source.path).name, "windows": pseudo_source.windows, "dropped": pseudo_source.dropped}
    if init_report is not None:
        extra["init_from"] = {"file": Path(config.init_from).name, "kind": init_report.source, "head": init_report.head}
    if notes:
        extra["license"] = next((t.get("license") for t in teachers if t.get("note")), None)
        extra["note"] = notes[0]
    return extra


def _train_loader(train_ds: ClipDataset, config: TrainConfig, generator: torch.Generator, rank: int, world: int, pseudo=None):
    if pseudo is not None:  # batches of labelled items then pseudo-labelled windows
        from .soft_labels import collate_soft, pseudo_batches

        batches = pseudo_batches(config.pseudo, train_ds.targets, pseudo, batch_size=config.batch_size, generator=generator,
                                 balanced=config.data.balanced_sampling, rank=rank, world=world, seed=config.seed)  # fmt: skip
        return torch.utils.data.DataLoader(torch.utils.data.ConcatDataset([train_ds, pseudo]), batch_sampler=batches, collate_fn=collate_soft,
                                           num_workers=config.num_workers, persistent_workers=config.num_workers > 0)  # fmt: skip
    sampler = None
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True)
    elif config.data.balanced_sampling:
        from ..data.sampling import balanced_sampler

        sampler = balanced_sampler(train_ds.targets, generator=generator)
    return torch.utils.data.DataLoader(
        train_ds, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler, generator=generator,
        drop_last=len(train_ds) > config.batch_size * world, num_workers=config.num_workers, persistent_workers=config.num_workers > 0,
    )  # fmt: skip


def fit(
    table: ClipTable,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    train_idx: np.ndarray | None = None,
    val_idx: np.ndarray | None = None,
    resume: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> FitResult:
    """Train ``config.model`` on ``table`` and keep the best epoch by validation padded cmAP (or the last one).

    Args:
        table: the labelled clips. Unless read with ``check_audio=True``, every clip is decoded once first
            (:func:`birdcall.data.dataset.check_clip_audio`, recorded so later runs skip it): a corrupt clip stops
            the run before the first epoch.
        config: the recipe.
        run_dir: output folder (see module docstring).
        train_idx, val_idx: row indices of ``table.frame``; default: a stratified hold-out of ``data.val_fraction``.
        resume: continue from ``run_dir/train_state.pt``; the config and the clip table (files, labels, split)
            must be the interrupted run's. The result equals an uninterrupted run.
        overwrite: a new run into a folder that holds a run (finished or not) replaces that run's files
            (:data:`birdcall.train.rundir.RUN_FILES`, fold folders); other files stay. Without it, such a folder
            is refused.

    Raises:
        BirdcallError: non-finite loss (names epoch and step). ParameterError: resume with another config or
        clip table, or a new run into a folder holding a run without ``overwrite``. DataError: a clip that
        does not decode. CheckpointError: resume without a readable ``train_state.pt``.
    """
    # torch's thread count is process-wide: set it for this run only, so a caller (a notebook, a test session, a
    # benchmark training several models) gets its own setting back afterwards
    with torch_threads(config.threads):
        return _fit(table, config, run_dir, train_idx=train_idx, val_idx=val_idx, resume=resume, overwrite=overwrite, show_progress=show_progress)


def _fit(table: ClipTable, config: TrainConfig, run_dir: str | Path, *, train_idx, val_idx, resume: bool, overwrite: bool, show_progress: bool) -> FitResult:
    """:func:`fit`'s work, with torch's thread count already set."""
    if resume and overwrite:
        raise ParameterError("fit: resume continues the run in run_dir and overwrite replaces it: choose one")
    run_dir = Path(run_dir)
    layout = ModelLayout(run_dir)
    birdnet_family = model_config(config.model, num_classes=len(table.labels)).arch in BIRDNET_FAMILIES
    used = [k for k, v in (("pseudo.labels", config.pseudo.labels), ("distill.teacher", config.distill.teacher), ("init_from", config.init_from)) if v]
    if birdnet_family and used:
        raise ParameterError(f"{config.model}: {', '.join(used)} not supported for the BirdNET families (their features are cached per clip)")
    rank, world = _distributed()
    is_main = rank == 0
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if not table.audio_checked:  # find a corrupt clip now, not halfway through an epoch
        table = check_clip_audio(table, record_dir=config.data.cache_dir)
    if train_idx is None or val_idx is None:
        train_idx, val_idx = split_holdout(list(table.frame["primary_label"]), fraction=config.data.val_fraction, seed=config.seed)
    fingerprint = run_fingerprint(config, table, train_idx, val_idx)
    if config.pseudo.labels is not None:  # a resume must train on the same pseudo-labels
        if not Path(config.pseudo.labels).is_file():
            raise ParameterError(f"{config.pseudo.labels}: pseudo.labels file not found")
        fingerprint["data"]["pseudo_labels"] = hash_files([Path(config.pseudo.labels)])
    state = None
    existing = [] if resume else cv_run_files(run_dir)
    if resume:  # before anything is written: a mismatched state stays as it was
        state = load_train_state(layout.state)
        check_resume(layout.state, state, fingerprint)
    elif not overwrite:
        refuse_existing_run(run_dir, existing)
    _barrier(world)  # every rank has checked before rank 0 changes the folder
    if is_main:
        clear_run(existing)
        run_dir.mkdir(parents=True, exist_ok=True)
        to_yaml(config, layout.config)

    if birdnet_family:  # a head on frozen BirdNET features
        if world > 1:
            raise ParameterError(f"{config.model} trains in one process (its features are cached): run it without torchrun")
        from .probe import fit_probe

        return fit_probe(table, config, run_dir, train_idx=np.asarray(train_idx), val_idx=np.asarray(val_idx), state=state, fingerprint=fingerprint,
                         show_progress=show_progress)  # fmt: skip
    targets = encode_targets(table, config.data.secondary_weight)
    train_ds, val_ds = _datasets(table, config, targets, np.asarray(train_idx), np.asarray(val_idx))
    pseudo_ds, pseudo_source = _pseudo_dataset(table, config)
    loader_generator = torch.Generator()
    train_loader = _train_loader(train_ds, config, loader_generator, rank, world, pseudo=pseudo_ds)
    teacher = None
    if config.distill.teacher is not None:
        from .soft_labels import OnlineTeacher

        teacher = OnlineTeacher(config.distill.teacher, table.labels, config.features, threads=config.threads)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=config.batch_size, num_workers=config.num_workers) if val_ds is not None else None

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = create_model(config.model, num_classes=len(table.labels), features=config.features, **model_overrides(config))
    init_report = None
    if config.init_from is not None and state is None:  # a resumed run has its own weights
        from .init import init_weights

        init_report = init_weights(model, config.init_from, labels=table.labels)
        if is_main and show_progress:
            print(init_report.line())
    model = model.to(device)
    distiller = None
    if config.distill.embedding_weight > 0:  # BirdNET's embeddings of the pseudo-labelled windows, once per run
        if world > 1:
            raise ParameterError("distill.embedding_weight trains in one process: run it without torchrun")
        from .soft_labels import embedding_distiller

        distiller = embedding_distiller(pseudo_ds, model, weight=config.distill.embedding_weight, log=print if is_main and show_progress else None).to(device)
    weights = class_weights(train_ds.targets, power=config.loss.class_weight_power) if config.loss.class_weight_power else None
    criterion = build_loss(
        config.loss.loss, label_smoothing=config.loss.label_smoothing, class_weights=weights, gamma=config.loss.focal_gamma, alpha=config.loss.focal_alpha,
        bce_weight=config.loss.bce_weight, focal_weight=config.loss.focal_weight,
    ).to(device)  # fmt: skip
    optimizer = build_optimizer(
        model if distiller is None else nn.ModuleList([model, distiller]),  # the linear map learns with the student
        name=config.optim.optimizer, lr=config.optim.lr, weight_decay=config.optim.weight_decay, momentum=config.optim.momentum,
        no_decay_bias_norm=config.optim.no_decay_bias_norm,
    )  # fmt: skip
    steps = len(train_loader)
    scheduler = build_scheduler(optimizer, warmup_steps=int(config.optim.warmup_epochs * steps), total_steps=config.epochs * steps, min_lr_ratio=config.optim.min_lr_ratio)
    ema = ModelEma(model, decay=config.ema_decay, warmup=config.ema_warmup) if config.ema_decay else None
    scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    extra = {"num_train_clips": len(train_ds), "num_val_clips": len(val_idx), **_lineage(config, pseudo_source, teacher, init_report)}
    history: list[dict] = []
    best = {"score": -np.inf, "epoch": 0, "metrics": {}}
    start_epoch = 1
    if state is not None:
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if distiller is not None:
            distiller.resume(state, layout.state)
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, best, start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"]) + 1

    with make_progress(disable=not (show_progress and is_main)) as progress:
        for epoch in range(start_epoch, config.epochs + 1):
            started = time.perf_counter()
            # Every draw of the epoch is reseeded from (seed, epoch): a resumed run repeats the original exactly.
            torch.manual_seed(epoch_seed(config.seed, epoch, rank))
            loader_generator.manual_seed(epoch_seed(config.seed, epoch))
            mix_generator = torch.Generator().manual_seed(epoch_seed(config.seed + 1, epoch, rank))
            for part in (train_ds, pseudo_ds, train_loader.sampler, train_loader.batch_sampler):
                if hasattr(part, "set_epoch"):  # datasets, DistributedSampler, PseudoBatchSampler
                    part.set_epoch(epoch)
            loss = train_one_epoch(
                model, train_loader, optimizer, scheduler, criterion, config=config, generator=mix_generator, epoch=epoch,
                device=device, ema=ema, scaler=scaler, progress=progress, teacher=teacher, distiller=distiller,
                pseudo_per_batch=train_loader.batch_sampler.per_batch if pseudo_ds is not None else 0,
            )  # fmt: skip
            if is_main:
                eval_model = ema.module if ema is not None else _unwrap(model)
                metrics, val_scores = evaluate(eval_model, val_loader, device=device, progress=progress) if val_loader is not None else ({}, None)
                row = {"epoch": epoch, "train_loss": loss, **metrics, "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started}
                best = record_epoch(run_dir, eval_model, table, config, extra=extra, row=row, history=history, best=best, val_idx=val_idx, val_scores=val_scores)
                save_train_state(
                    layout.state, model=_unwrap(model).state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    ema=ema.state_dict() if ema is not None else None, scaler=scaler.state_dict() if scaler is not None else None,
                    epoch=epoch, history=history, best=best, fingerprint=fingerprint, distiller=distiller.state_dict() if distiller is not None else None,
                )  # fmt: skip
                progress.console.print(
                    f"epoch {epoch}/{config.epochs}  loss {loss:.4f}" + "".join(f"  {k} {v:.4f}" for k, v in metrics.items()) + f"  ({row['seconds']:.1f} s)",
                    highlight=False,
                )
            _barrier(world)
    if world > 1:  # BatchNorm statistics follow each rank's own last batches: take rank 0's everywhere
        import torch.distributed as dist

        for buffer in _unwrap(model).buffers():
            dist.broadcast(buffer, src=0)
    final = ema.module if ema is not None else _unwrap(model)
    return FitResult(run_dir, layout.best, int(best["epoch"]), best["metrics"], pd.DataFrame(history), final)
