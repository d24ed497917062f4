"""Augmented copies of unlabelled recordings, for a teacher to label: a larger, *consistent* transfer set.

Usage:
    .venv/bin/python benchmarks/transfer_views.py --source ../shared/data/nips4b/unlabeled \\
        --background ../shared/data/nips4b/background --out runs/ss21/views [--views 4] [--seed 0]

Why: a student taught on pseudo-labelled windows that it then hears augmented (noise, sum-mixing) learns targets
that no longer describe its input (the teacher never heard that noise). With ``pseudo.augment: false`` the
student hears each window exactly as its teacher did; the augmentation moves here, *before* the teacher, so
every augmented view carries the teacher's verdict on that very audio ("consistent teaching", Beyer et al.
2022, *Knowledge distillation: a good teacher is patient and consistent*). The teacher runs once per view
(``birdcall pseudo-label`` on this folder and the originals), not once per batch.

View ``j`` (1..``--views``) of recording ``i`` draws from ``default_rng([seed, i, j])``:

- a circular shift by a uniform offset (calls move across the window edges, as in a continuous recording);
- with p 0.8, a bed of background clips (:func:`birdcall.data.soundscape.background_bed`) at an SNR uniform in
  [0, 20] dB against the recording's RMS;
- with p 0.5, another unlabelled recording (circularly shifted too) at a level uniform in [-10, 0] dB against it:
  two sources in one window, which the teacher labels as a whole;
- peak-normalised to 0.9 when the sum would clip.

Files: ``OUT/<stem>_v<j>.flac`` (32 kHz, lossless; written atomically, an existing file is kept, so a killed run
resumes). The originals are not copied: label both folders (``pseudo_label([...], [SOURCE, OUT], ...)``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 32000


def make_view(y: np.ndarray, *, other: np.ndarray | None, bed: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """One augmented view of ``y`` (same length): shifted, plus ``bed`` (already at its level) and ``other``."""
    from birdcall.data.soundscape import _rms

    out = np.roll(y, int(rng.integers(0, max(1, y.size)))).astype(np.float32)
    level = _rms(y)
    if bed is not None:
        out = out + bed[: y.size]
    if other is not None and level > 0:
        other = np.resize(np.roll(other, int(rng.integers(0, max(1, other.size)))), y.size)  # tiled or cut to y's length
        gain = 10.0 ** (rng.uniform(-10.0, 0.0) / 20.0) * level / max(_rms(other), 1e-12)
        out = out + gain * other
    peak = float(np.abs(out).max()) if out.size else 0.0
    return (out * (0.9 / peak) if peak > 0.9 else out).astype(np.float32)


def build_views(source: Path, background: Path, out: Path, *, views: int = 4, seed: int = 0) -> dict:
    from birdcall.audio import AUDIO_EXTENSIONS, write_audio
    from birdcall.augment.waveform.add_background_noise import find_audio_files
    from birdcall.data.mixed_windows import MemoryReader
    from birdcall.data.soundscape import _rms, background_bed
    from birdcall.errors import AudioLoadError

    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)  # not recursive: a view is named by its stem
    beds = find_audio_files(background)
    if not files or not beds:
        raise SystemExit(f"no audio in {source if not files else background}")
    read = MemoryReader(SAMPLE_RATE)  # every recording is read again as another's second source

    out.mkdir(parents=True, exist_ok=True)
    written = kept = 0
    skipped: list[str] = []
    for i, path in enumerate(files):
        try:
            y = read(path)
        except AudioLoadError as err:
            skipped.append(f"{path.name}: {err.cause}")
            continue
        level = _rms(y)
        for j in range(1, views + 1):
            target = out / f"{path.stem}_v{j}.flac"
            if target.exists():
                kept += 1
                continue
            rng = np.random.default_rng([seed, i, j])
            bed = None
            if rng.random() < 0.8 and level > 0:
                snr = rng.uniform(0.0, 20.0)
                level_db = 20.0 * np.log10(level) - snr
                bed = background_bed(read, beds, y.size, fade_samples=int(0.05 * SAMPLE_RATE), level_db=(level_db, level_db), rng=rng, random_start=True)
            other = None
            if rng.random() < 0.5:
                k = int(rng.integers(len(files) - 1))
                k += k >= i  # another recording, never this one
                try:
                    other = read(files[k])
                except AudioLoadError:
                    other = None
            write_audio(target, make_view(y, other=other, bed=bed, rng=rng), SAMPLE_RATE)
            written += 1
    return {"recordings": len(files), "written": written, "kept": kept, "skipped": skipped}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--background", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.views < 1:
        raise SystemExit(f"--views must be >= 1, got {args.views}")
    summary = build_views(args.source, args.background, args.out, views=args.views, seed=args.seed)
    print(f"{summary['recordings']} recordings: {summary['written']} views written, {summary['kept']} kept, {len(summary['skipped'])} skipped")
    for line in summary["skipped"]:
        print(f"  skipped {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
