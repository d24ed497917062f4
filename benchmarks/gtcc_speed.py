"""Cost of the GTCC channels (issue 21, item 2): the model front end with and without them, per batch of 5-s windows.

Usage:
    .venv/bin/python benchmarks/gtcc_speed.py [--batch-size 16] [--batches 8] [--repeats 5] [--threads 1]
        [--model cnn_mobilenetv3_large] [--audio DIR]

Times `FeatureExtractor` (torch, float32, the seed recipe's 32 kHz / n_fft 2048 / 128 mels) on ``--batches``
batches of ``--batch-size`` 5-s windows for several channel sets, and the whole model (front end + CNN,
``--model``) for log-mel alone and log-mel fused with GTCC + deltas, so the front end's share of a window's cost is
visible. The configurations are timed in interleaved rounds (so load from other processes hits them alike) and
each figure is the best of ``--repeats`` rounds after one warm-up round (the machine is shared). The windows are
NIPS4B clips when found (``--audio``, ``$BIRDCALL_NIPS4B`` or ``../shared/data/nips4b``), otherwise seeded noise;
the front end's cost does not depend on the audio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from birdcall.features import FeatureConfig, FeatureExtractor
from birdcall.models import create_model

CHANNEL_SETS = [
    ("logmel",),
    ("logmel", "logmel_delta", "logmel_delta2"),
    ("logmel", "mfcc", "mfcc_delta", "mfcc_delta2"),
    ("gtcc",),
    ("logmel", "gtcc"),
    ("logmel", "gtcc", "gtcc_delta", "gtcc_delta2"),
]
MODEL_CHANNELS = [("logmel",), ("logmel", "gtcc", "gtcc_delta", "gtcc_delta2")]


def _windows(features: FeatureConfig, count: int, audio) -> tuple[np.ndarray, str]:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("feature_speed", Path(__file__).with_name("feature_speed.py"))
    feature_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(feature_speed)
    y, source = feature_speed._audio(count * features.clip_duration, features.sample_rate, audio)
    return y[: count * features.clip_samples].reshape(count, -1), source


def _interleaved_best(fns: list, repeats: int) -> list[float]:
    """Best time of each function over ``repeats`` rounds that run every function once, after a warm-up round."""
    best = [float("inf")] * len(fns)
    for round_ in range(repeats + 1):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            if round_:
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="cnn_mobilenetv3_large")
    parser.add_argument("--audio", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = FeatureConfig()
    y, source = _windows(base, args.batch_size * args.batches, args.audio)
    batches = [torch.from_numpy(b) for b in np.split(y, args.batches)]
    print(f"{args.batches} batches of {args.batch_size} x 5-s windows ({source}); torch {torch.__version__}, "
          f"{args.threads} thread(s); best of {args.repeats} after a warm-up")

    def runner(module):
        def run():
            with torch.inference_mode():
                for batch in batches:
                    module(batch)

        return run

    fronts = [runner(FeatureExtractor(FeatureConfig(channels=channels)).eval()) for channels in CHANNEL_SETS]
    times = [t / args.batches for t in _interleaved_best(fronts, args.repeats)]
    print("| front end channels | ms per batch | ms per window | × log-mel |\n|---|---|---|---|")
    for channels, seconds in zip(CHANNEL_SETS, times):
        print(f"| {', '.join(channels)} | {1000 * seconds:.1f} | {1000 * seconds / args.batch_size:.2f} | {seconds / times[0]:.2f} |")
    models = []
    for channels in MODEL_CHANNELS:
        torch.manual_seed(0)
        models.append(runner(create_model(args.model, num_classes=51, features=FeatureConfig(channels=channels)).eval()))
    times = [t / args.batches for t in _interleaved_best(models, args.repeats)]
    print(f"\n| {args.model} (front end + CNN) | ms per batch | ms per window | × log-mel |\n|---|---|---|---|")
    for channels, seconds in zip(MODEL_CHANNELS, times):
        print(f"| {', '.join(channels)} | {1000 * seconds:.1f} | {1000 * seconds / args.batch_size:.2f} | {seconds / times[0]:.2f} |")


if __name__ == "__main__":
    main()
