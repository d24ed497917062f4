"""Time the log-mel front end: torch `LogMel` against librosa on the same audio (10 minutes by default).

Usage:
    .venv/bin/python benchmarks/feature_speed.py [--minutes 10] [--repeats 3] [--batch-size 16] [--threads N]
        [--audio DIR] [--numpy]

Torch runs three ways: the whole recording in one call, all 5-s clips in one batch, and the 5-s clips in
batches of ``--batch-size`` (how inference feeds a model). On a CPU the last is much faster than one huge call:
a 10-min STFT materialises ~1 GB of frames and spectra, and the time goes to memory traffic, not arithmetic.

The audio is real NIPS4B clips concatenated to the requested length when the data is found (``--audio``,
``$BIRDCALL_NIPS4B`` or ``../shared/data/nips4b`` beside the repo), otherwise seeded noise. Each timing is
the best of ``--repeats`` runs after one warm-up run. librosa is a test/benchmark dependency only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from birdcall.features import FeatureConfig, LogMel, log_mel

REPO_ROOT = Path(__file__).resolve().parents[1]


def _audio(seconds: float, sample_rate: int, data_dir: Path | None) -> tuple[np.ndarray, str]:
    num_samples = int(seconds * sample_rate)
    candidates = [data_dir] if data_dir else []
    if os.environ.get("BIRDCALL_NIPS4B"):
        candidates.append(Path(os.environ["BIRDCALL_NIPS4B"]))
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "nips4b")
    for root in candidates:
        files = sorted(root.glob("train_audio/*/*.ogg")) if root and root.is_dir() else []
        if files:
            from birdcall.audio.io import load

            parts, total = [], 0
            for path in files:
                parts.append(load(path, sample_rate=sample_rate))
                total += len(parts[-1])
                if total >= num_samples:
                    break
            y = np.concatenate(parts)
            y = np.tile(y, -(-num_samples // len(y)))[:num_samples]
            return y.astype(np.float32), f"{len(parts)} NIPS4B clips from {root}"
    rng = np.random.default_rng(0)
    return (0.05 * rng.standard_normal(num_samples)).astype(np.float32), "seeded white noise"


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, FFT plans, librosa's caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="5-s clips per LogMel call in the batched run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--audio", type=Path, default=None, help="NIPS4B-style folder with train_audio/")
    parser.add_argument("--numpy", action="store_true", help="also time the float64 numpy reference")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import librosa

    config = FeatureConfig()
    y, source = _audio(args.minutes * 60, config.sample_rate, args.audio)
    clip = config.clip_samples
    clips = torch.from_numpy(y[: len(y) // clip * clip].reshape(-1, clip))
    waveform = torch.from_numpy(y)[None]
    module = LogMel(config).eval()

    def run_torch_long():
        with torch.inference_mode():
            module(waveform)

    def run_torch_clips():
        with torch.inference_mode():
            module(clips)

    def run_torch_batches():
        with torch.inference_mode():
            for start in range(0, clips.shape[0], args.batch_size):
                module(clips[start : start + args.batch_size])

    def run_librosa():
        S = librosa.feature.melspectrogram(
            y=y, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
            fmin=config.fmin, fmax=config.fmax, power=config.power,
        )
        librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)

    print(f"audio: {args.minutes:g} min at {config.sample_rate} Hz ({len(y)} samples), {source}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; librosa {librosa.__version__}; "
          f"best of {args.repeats} after a warm-up")
    t_long = _best_time(run_torch_long, args.repeats)
    t_clips = _best_time(run_torch_clips, args.repeats)
    t_batches = _best_time(run_torch_batches, args.repeats)
    t_librosa = _best_time(run_librosa, args.repeats)
    rows = [
        (f"LogMel (torch), one {args.minutes:g}-min signal", t_long),
        (f"LogMel (torch), {clips.shape[0]} 5-s clips in one batch", t_clips),
        (f"LogMel (torch), 5-s clips in batches of {args.batch_size}", t_batches),
        ("librosa melspectrogram + power_to_db", t_librosa),
    ]
    for label, seconds in rows:
        print(f"{label:<44s}: {seconds:7.3f} s")
    print(f"speed-up over librosa (librosa time / torch time): {t_librosa / t_long:.2f}x (one signal), "
          f"{t_librosa / t_clips:.2f}x (one batch), {t_librosa / t_batches:.2f}x (batches of {args.batch_size})")
    if args.numpy:
        t_numpy = _best_time(lambda: log_mel(y=y, config=config), 1)
        print(f"{'log_mel (numpy float64 reference)':<44s}: {t_numpy:7.3f} s")


if __name__ == "__main__":
    main()
