"""The end-to-end demo on the embedded synthetic chorus data: synthesise -> train -> predict -> score.

Every step is the library's ordinary code path (the same ``fit``, ``predict_files`` and metrics the CLI
commands use); the demo only chooses small sizes so it runs in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..audio import AUDIO_EXTENSIONS
from ..data import read_clip_table
from ..eval.submission import read_solution, read_submission, score_submission
from ..layout import DatasetLayout
from ..fileio import atomic_write_text
from ..infer import TorchScorer, WindowSpec, predict_files, write_submission
from ..models import load_model
from ..synth import SynthConfig, make_dataset
from ..train import TrainConfig, fit
from ..train.config import DataConfig
from ..train.optim import OptimConfig

__all__ = ["DemoConfig", "DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """The demo's data set (its ``seed`` also seeds training) and training run."""

    synth: SynthConfig = SynthConfig(num_species=12, seed=0, clips_per_species=24, num_background=20, num_soundscapes=3, soundscape_duration=180.0)
    train: TrainConfig = TrainConfig(
        model="cnn_mobilenetv3_large", epochs=30, batch_size=32, optim=OptimConfig(lr=3e-3), data=DataConfig(val_fraction=0.15)
    )


@dataclass(frozen=True)
class DemoResult:
    run_dir: Path
    scores: dict
    per_species: pd.DataFrame
    seconds: dict


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig(), *, show_progress: bool = True, log=print) -> DemoResult:
    """Run the whole demo into ``out_dir`` (data/, train/, submission.csv, scores.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    data_dir = out_dir / "data"
    log(f"[1/4] synthesising {config.synth.num_species} species into {data_dir}")
    make_dataset(data_dir, config.synth, overwrite=True, show_progress=show_progress)
    timings["synthesise"] = time.perf_counter() - started

    started = time.perf_counter()
    table = read_clip_table(data_dir)
    log(f"[2/4] training {config.train.model} on {len(table.frame)} clips, {len(table.labels)} species")
    train_config = replace(config.train, seed=config.synth.seed)
    # the demo owns out_dir/train: a re-run (`make demo` twice) replaces the run it left there
    result = fit(table, train_config, out_dir / "train", overwrite=True, show_progress=show_progress)
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    model, labels, _ = load_model(result.best_path)
    soundscapes = sorted(p for p in DatasetLayout(data_dir).soundscapes.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    log(f"[3/4] predicting {len(soundscapes)} soundscapes with the best epoch ({result.best_epoch})")
    features = model.feature_config
    spec = WindowSpec(features.sample_rate, features.clip_duration, pad=features.pad)
    prediction = predict_files(TorchScorer(model), soundscapes, labels=labels, spec=spec, show_progress=show_progress)
    submission_path = write_submission(prediction.scores, out_dir / "submission.csv")
    timings["predict"] = time.perf_counter() - started

    log("[4/4] scoring submission.csv against solution.csv")
    solution = read_solution(DatasetLayout(data_dir).solution)
    submission = read_submission(submission_path)
    scores = score_submission(solution, submission)
    per_species = pd.DataFrame(scores.pop("per_species"))
    summary = {"scores": scores, "seconds": timings, "best_epoch": result.best_epoch, "model": config.train.model}
    atomic_write_text(out_dir / "scores.json", json.dumps(summary, indent=2, default=float))
    return DemoResult(out_dir, scores, per_species, timings)
