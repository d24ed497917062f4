"""A fake K-fold run folder, as ``birdcall train --folds K`` leaves it, for the tests of what reads run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import LabelSet, read_clip_table
from ..features import FeatureConfig
from ..layout import RunLayout


def write_fake_run(run: Path, data_root: Path, codes, *, features: FeatureConfig, rng: np.random.Generator,
                   folds: int = 2, epochs: int = 2) -> Path:  # fmt: skip
    """Write ``run/folds.csv``, ``run/oof.csv`` and ``run/fold<i>/{best.safetensors,metrics.csv}``.

    Clip ``i`` of the data set's table goes to fold ``i % folds``; its out-of-fold scores are uniform draws
    from ``rng`` (rounded to 4 decimals), tagged with the last epoch and sorted by fold as training writes them.
    Fold ``i``'s model is an untrained ``test_cnn`` seeded with ``i``; its ``metrics.csv`` has ``epochs`` rows
    with ``train_loss = 0.7 - 0.1 (epoch - 1) - fold / 10`` for epochs after the first (0.7 at epoch 1).
    """
    import torch

    from ..models import create_model, save_model

    run = Path(run)
    layout = RunLayout(run)
    run.mkdir(parents=True, exist_ok=True)
    codes = list(codes)
    table = read_clip_table(data_root).frame
    fold = np.arange(len(table)) % folds
    labels = [" ".join(c) for c in table["labels"]]
    pd.DataFrame({"filename": table["filename"], "labels": labels, "fold": fold}).to_csv(layout.folds_csv, index=False)
    oof = pd.DataFrame(rng.uniform(size=(len(table), len(codes))).round(4), columns=codes)
    oof.insert(0, "filename", table["filename"])
    oof.insert(1, "epoch", epochs)
    oof["fold"] = fold
    oof.sort_values("fold", kind="stable").to_csv(layout.oof, index=False)
    for i in range(folds):
        torch.manual_seed(i)
        model = create_model("test_cnn", num_classes=len(codes), features=features).eval()
        save_model(model, layout.fold(i).best, labels=LabelSet(tuple(codes)))
        loss = [0.7] + [round(0.7 - 0.1 * e - i / 10, 6) for e in range(1, epochs)]
        metrics = pd.DataFrame({"epoch": range(1, epochs + 1), "train_loss": loss, "padded_cmap": np.linspace(0.5, 0.6, epochs)})
        metrics.to_csv(layout.fold(i).metrics, index=False)
    return run
