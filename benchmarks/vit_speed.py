"""CPU cost per window of the audio transformers (issue 21, item 1) beside the CNNs: torch, eval, whole model.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/vit_speed.py [--batch-size 32] [--repeats 5] [--threads 1 2]
        [--models vit_tiny sed_vit_tiny cnn_mobilenetv3_large cnn_efficientnet_b0]

Times ``model(waveform)`` (front end + backbone + head, float32, ``torch.no_grad``, eval) on one batch of
``--batch-size`` seeded-noise 5-s windows at the seed recipe's features (32 kHz, n_fft 2048, hop 512, 128 mels;
the cost does not depend on the audio), for each thread count. Models are timed in interleaved rounds, so load
from other processes hits them alike; each figure is the best of ``--repeats`` rounds after a warm-up round.
Random weights (``pretrained`` is never used); parameter counts are printed with 10 classes.
"""

from __future__ import annotations

import argparse
import time

import torch

from birdcall.features import FeatureConfig
from birdcall.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=["vit_tiny", "sed_vit_tiny", "cnn_mobilenetv3_large", "cnn_efficientnet_b0"])
    args = parser.parse_args()
    features = FeatureConfig()
    torch.manual_seed(0)
    models = {name: create_model(name, num_classes=10, features=features).eval() for name in args.models}
    x = torch.randn(args.batch_size, features.clip_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    print(f"batch of {args.batch_size} x 5-s windows; torch {torch.__version__}; best of {args.repeats} after a warm-up")
    print("| model | parameters | threads | s per batch | ms per window |")
    print("|---|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        best = dict.fromkeys(models, float("inf"))
        with torch.no_grad():
            for round_ in range(args.repeats + 1):
                for name, model in models.items():
                    start = time.perf_counter()
                    model(x)
                    if round_:
                        best[name] = min(best[name], time.perf_counter() - start)
        for name, model in models.items():
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"| {name} | {params:.1f} M | {threads} | {best[name]:.3f} | {1000 * best[name] / args.batch_size:.1f} |")


if __name__ == "__main__":
    main()
