"""Issue 20's scale-out benchmark: ``analyze --engine ray`` (a local Ray, 1 and 2 actors) vs the local engine, in one run.

Usage:
    .venv/bin/python benchmarks/ray_scale.py [--out runs/ray_scale] [--files 12] [--minutes 5] [--model cnn_mobilenetv3_large]

What it does: writes ``--files`` generated recordings of ``--minutes`` each (FLAC, 44.1 kHz, resampled to the model's
32 kHz while decoding), builds the model with random weights (182 classes) and exports it to ONNX, then runs
``run_inference(kind="detections")`` (what ``birdcall analyze`` runs) on the folder:

- ``local, 1 thread`` and ``local, 2 threads``: the local engine (decoding thread + ONNX Runtime);
- ``ray, 1 actor`` and ``ray, 2 actors``: the Ray engine, each actor 1 CPU and 1 ONNX thread, a local Ray started by
  the run (its start-up included in the wall time, as a user sees it);
- ``ray start-up``: the Ray engine on one 1-s file: starting Ray, the actors, opening the model in them.

It reports per row the wall time and real-time factor (audio seconds per wall second), the throughput against the
local engine at the same core count (whole run, and without the start-up), and for the driver its CPU seconds per
file (receiving rows, writing parts and manifest). Decoding alone (stream + resample of every file) gives the
decode cost. The figures go to ``--out``/results.json and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def make_audio(folder: Path, files: int, minutes: float) -> list[Path]:
    from birdcall.audio import write_audio
    from birdcall.testing.signals import tone

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        path = folder / f"site{i:02d}.flac"
        if not path.exists():
            seconds = minutes * 60
            y = tone(frequency_hz=1000.0 + 150 * i, duration=seconds, sample_rate=44_100, amplitude=0.1)
            y = (y + 0.05 * rng.standard_normal(len(y))).astype(np.float32)
            write_audio(path, y, 44_100)
        paths.append(path)
    return paths


def make_model(out: Path, arch: str) -> Path:
    path = out / f"{arch}.onnx"
    if path.exists():
        return path
    import torch

    from birdcall.data.labels import LabelSet
    from birdcall.export import export_onnx
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model

    torch.manual_seed(0)
    labels = LabelSet(tuple(f"sp{i:03d}" for i in range(182)))
    model = create_model(arch, num_classes=182, features=FeatureConfig()).eval()
    return export_onnx(model, path, labels=labels)


def timed_run(model: Path, inputs: list[Path], out: Path, engine) -> dict:
    from birdcall.infer.run import DetectionOptions, run_inference

    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_inference(model, inputs, out, kind="detections", detection=DetectionOptions(min_confidence=0.5), engine=engine)
    return {"wall": time.perf_counter() - wall, "driver_cpu": time.process_time() - cpu, "files": summary.files, "windows": summary.windows}


def decode_seconds(paths: list[Path]) -> float:
    from birdcall.audio import stream

    started = time.perf_counter()
    for path in paths:
        for _ in stream(path, sample_rate=32_000, chunk_duration=30.0):
            pass
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/ray_scale"))
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--model", default="cnn_mobilenetv3_large")
    args = p.parse_args()

    from birdcall.infer.run import EngineOptions, RayOptions

    args.out.mkdir(parents=True, exist_ok=True)
    paths = make_audio(args.out / "audio", args.files, args.minutes)
    tiny = make_audio(args.out / "tiny", 1, 1 / 60)
    model = make_model(args.out, args.model)
    audio = args.files * args.minutes * 60
    rows: dict[str, dict] = {}
    rows["decode only"] = {"wall": decode_seconds(paths)}
    configs = {
        "ray start-up": (EngineOptions(engine="ray", threads=1, ray=RayOptions(num_actors=1)), tiny),
        "local, 1 thread": (EngineOptions(threads=1), paths),
        "ray, 1 actor": (EngineOptions(engine="ray", threads=1, ray=RayOptions(num_actors=1)), paths),
        "local, 2 threads": (EngineOptions(threads=2), paths),
        "ray, 2 actors": (EngineOptions(engine="ray", threads=1, ray=RayOptions(num_actors=2)), paths),
    }
    for i, (name, (engine, inputs)) in enumerate(configs.items()):
        rows[name] = timed_run(model, inputs, args.out / f"run{i}", engine)
        print(name, rows[name], flush=True)
    startup = rows["ray start-up"]["wall"]
    lines = ["| run | wall (s) | RTF | vs local, same cores | same, start-up excluded | driver CPU s/file |", "|---|---:|---:|---:|---:|---:|"]
    lines.append(f"| decode + resample only (1 core) | {rows['decode only']['wall']:.1f} | {audio / rows['decode only']['wall']:.0f} | | | |")
    lines.append(f"| Ray start-up (1 actor, one 1-s file) | {startup:.1f} | | | | |")
    for name, local in (("local, 1 thread", None), ("ray, 1 actor", "local, 1 thread"), ("local, 2 threads", None), ("ray, 2 actors", "local, 2 threads")):
        row = rows[name]
        ratio = ratio_warm = ""
        if local is not None:
            ratio = f"{rows[local]['wall'] / row['wall']:.2f}"
            ratio_warm = f"{rows[local]['wall'] / max(row['wall'] - startup, 1e-9):.2f}"
        lines.append(f"| {name} | {row['wall']:.1f} | {audio / row['wall']:.0f} | {ratio} | {ratio_warm} | {row['driver_cpu'] / row['files']:.3f} |")
    table = "\n".join(lines)
    print(f"\n{args.files} files x {args.minutes:g} min = {audio / 3600:.2f} h, {args.model} (ONNX, 182 classes)\n\n{table}")
    (args.out / "results.json").write_text(json.dumps({"audio_seconds": audio, "model": args.model, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
