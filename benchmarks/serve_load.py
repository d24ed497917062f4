"""Load on a real `birdcall serve`: concurrent clients posting recordings of several lengths, against `birdcall
analyze` on the same files in the same run.

Usage:
    .venv/bin/python benchmarks/serve_load.py [--out runs/serve_load] [--clients 8] [--duration 180]
        [--lengths 10,60,600] [--weights 6,3,1] [--corrupt 4] [--model MODEL | --arch cnn_efficientnet_b0
        --num-classes 182 --detections 1000] [--jobs 2] [--queue 16] [--workers 1] [--analyze-rounds 2]

What it does:

- generates a ``max(--lengths)``-second soundscape (birdcall.synth, OGG at 32 kHz) and cuts the shorter
  recordings from its start (10 s, 1 min, 10 min by default), plus the corrupt uploads: a truncated OGG, a
  text file named ``.wav`` and an empty file;
- the model: ``--model`` as given, or ``--arch`` with random weights and ``--num-classes`` outputs, saved as a
  checkpoint whose classifier is calibrated (as in ``inference_speed.py``) so that ``--detections`` (window,
  species) pairs of the longest file pass 0.1 (random weights otherwise give none or every pair); a checkpoint
  runs, as ``analyze`` and ``serve`` run it by default, on its cached OpenVINO export, made once before any timing;
- ``birdcall analyze``'s run on each distinct recording once (one ``run_inference`` call in a fresh process,
  timed once the model is open, as the server's is), ``--analyze-rounds`` times, half before the load and half
  after it, so that a slow spell of the shared machine is less likely to favour one side;
- starts ``birdcall serve`` on a free port of 127.0.0.1 (the server's own defaults, ``--jobs``/``--queue``/
  ``--workers`` as given), then ``--clients`` threads each post multipart uploads back to back for
  ``--duration`` seconds, the recordings drawn by ``--weights`` (seeded), the ``--corrupt`` corrupt ones one
  every ``--clients`` uploads from the start (among uploads in flight); every request is bounded by a timeout
  and the run stops by itself;
- samples the server's RSS (its whole process tree) every 0.5 s.

Reports: requests/s; p50/p95 latency, overall and per length; audio-seconds analysed per wall second, against
``analyze`` on the same files (median of its rounds); failed requests (a good upload not answered 200, a corrupt
one not answered 4xx, or a request error); the corrupt uploads' statuses; the server's RSS (start of the load,
median of the first and last quarters, peak) and the upload folder left empty. Prints markdown and writes
``OUT/serve_load.json``. Run it alone: the clients, the server and the CPU share two cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# `birdcall analyze`'s run (run_inference, detections >= 0.1, every output written) on the files, timed from the
# model opened as analyze opens it (a checkpoint: its cached OpenVINO export), as the server has it opened too.
ANALYZE_CHILD = """
import json, sys, time
from birdcall.infer import DetectionOptions, run_inference
from birdcall.infer.models import open_scorer
model, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
opened = open_scorer(model, auto_export=True)
started = time.perf_counter()
summary = run_inference(opened.scorer, files, out, kind="detections", detection=DetectionOptions(min_confidence=0.1), model_id="serve_load")
print(json.dumps({"seconds": time.perf_counter() - started, "summary": summary.line(), "backend": opened.backend}))
"""


def make_recordings(out: Path, lengths: list[float]) -> dict[str, Path]:
    """``{"10s": path, ...}``: the longest length generated, the others cut from its start (OGG, 32 kHz), and the
    corrupt uploads ``{"corrupt-truncated": ..., "corrupt-text": ..., "corrupt-empty": ...}``."""
    from birdcall.audio import load, write_audio
    from birdcall.synth import make_dataset

    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    longest = max(lengths)
    source = audio_dir / f"soundscape-{longest:g}s.ogg"
    if not source.is_file():
        data = make_dataset(out / "synth", num_species=12, clips_per_species=1, num_background=1, num_soundscapes=1,
                            soundscape_duration=float(longest), overwrite=True)  # fmt: skip
        write_audio(source, load(data.root / data.soundscape_files[0], sample_rate=32_000), 32_000)
    audio = None
    files = {}
    for length in sorted(lengths):
        path = audio_dir / f"rec-{length:g}s.ogg"
        if not path.is_file():
            audio = load(source, sample_rate=32_000) if audio is None else audio
            write_audio(path, audio[: round(length * 32_000)], 32_000)
        files[f"{length:g}s"] = path
    truncated = audio_dir / "corrupt-truncated.ogg"
    truncated.write_bytes(files[f"{min(lengths):g}s"].read_bytes()[:3000])
    (audio_dir / "corrupt-text.wav").write_text("this is not a recording\n")
    (audio_dir / "corrupt-empty.flac").write_bytes(b"")
    files.update({"corrupt-truncated": truncated, "corrupt-text": audio_dir / "corrupt-text.wav", "corrupt-empty": audio_dir / "corrupt-empty.flac"})
    return files


def make_model(out: Path, arch: str, num_classes: int, detections: int, calibrate_on: Path) -> Path:
    """A random ``arch`` checkpoint, calibrated so that ``detections`` pairs of ``calibrate_on`` pass 0.1."""
    import importlib.util

    import torch

    from birdcall.data.labels import LabelSet
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model, save_model

    path = out / "models" / f"{arch}-{num_classes}-{detections}.safetensors"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = create_model(arch, num_classes=num_classes, features=FeatureConfig()).eval()
    if detections:
        spec = importlib.util.spec_from_file_location("inference_speed", Path(__file__).with_name("inference_speed.py"))
        speed = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(speed)
        speed.calibrate_detections(model, calibrate_on, detections)
    return save_model(model, path, labels=LabelSet(tuple(f"sp{i:03d}" for i in range(num_classes))))


def run_analyze(model: Path, files: list[Path], out: Path) -> dict:
    """``run_inference`` (what ``birdcall analyze`` runs) on ``files`` in a fresh process; its own wall time."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, "-c", ANALYZE_CHILD, str(model), str(out), *map(str, files)], capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"analyze failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class RssSampler(threading.Thread):
    """The RSS of a process and its children, every ``period`` seconds, as ``(seconds since start, MB)``."""

    def __init__(self, pid: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples = pid, period, []
        self.stopped = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stopped.wait(self.period):
            try:
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.samples.append((time.monotonic() - self.started_at, total / 2**20))


def schedule(names: list[str], weights: list[float], corrupt: list[str], count: int, *, every: int, seed: int = 0) -> list[str]:
    """``count`` uploads drawn by ``weights`` (seeded); the corrupt ones replace every ``every``-th upload from the
    ``every``-th on, so each arrives while other clients' uploads are in flight."""
    rng = random.Random(seed)
    plan = rng.choices(names, weights=weights, k=count)
    for i, name in enumerate(corrupt):
        plan[min(count - 1, (i + 1) * every)] = name
    return plan


def load_test(url: str, api_key: str | None, files: dict[str, Path], plan: list[str], clients: int, duration: float, timeout: float) -> tuple[list[dict], float]:
    """``clients`` threads post the uploads of ``plan`` in order until ``duration`` is over; every request's record."""
    import requests

    from birdcall.audio import info

    seconds = {name: (info(path).duration if not name.startswith("corrupt") else 0.0) for name, path in files.items()}
    records: list[dict] = []
    lock = threading.Lock()
    position = [0]
    started = time.monotonic()
    stop_at = started + duration

    def client(number: int) -> None:
        session = requests.Session()
        headers = {"X-API-Key": api_key} if api_key else {}
        while time.monotonic() < stop_at:
            with lock:
                if position[0] >= len(plan):
                    return
                name = plan[position[0]]
                position[0] += 1
            path = files[name]
            sent = time.monotonic()
            record = {"client": number, "name": name, "audio_s": seconds[name], "bytes": path.stat().st_size, "start_s": sent - started}
            try:
                with open(path, "rb") as handle:
                    response = session.post(f"{url}/v1/analyze", files={"file": (path.name, handle)}, headers=headers, timeout=timeout)
                record.update(status=response.status_code, detail=None if response.ok else response.json().get("detail"),
                              detections=len(response.json()["detections"]) if response.ok else 0)  # fmt: skip
            except Exception as err:  # noqa: BLE001 - counted as a failed request, the run goes on
                record.update(status=None, detail=f"{type(err).__name__}: {err}", detections=0)
            record["latency_s"] = time.monotonic() - sent
            with lock:
                records.append(record)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + timeout + 60)
    return records, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(records: list[dict], wall: float, analyze_rates: list[float], rss: list[tuple[float, float]], lengths: list[str]) -> dict:
    good = [r for r in records if not r["name"].startswith("corrupt")]
    bad = [r for r in records if r["name"].startswith("corrupt")]
    ok = [r for r in good if r["status"] == 200]
    failed = [r for r in good if r["status"] != 200] + [r for r in bad if r["status"] is None or not 400 <= r["status"] < 500]
    audio = sum(r["audio_s"] for r in ok)
    analyze_rate = statistics.median(analyze_rates) if analyze_rates else float("nan")
    by_length = {}
    for name in lengths:
        mine = [r["latency_s"] for r in ok if r["name"] == name]
        by_length[name] = {"requests": len(mine), "p50_s": percentile(mine, 0.5), "p95_s": percentile(mine, 0.95)}
    quarter = max(1, len(rss) // 4)
    first, last = [m for _, m in rss[:quarter]], [m for _, m in rss[-quarter:]]
    return {
        "wall_s": wall, "requests": len(records), "ok": len(ok), "failed": len(failed), "failures": [f"{r['name']}: {r['status']} {r['detail']}" for r in failed],
        "requests_per_s": len(ok) / wall, "p50_s": percentile([r["latency_s"] for r in ok], 0.5), "p95_s": percentile([r["latency_s"] for r in ok], 0.95),
        "by_length": by_length, "audio_s": audio, "audio_per_wall_s": audio / wall, "analyze_audio_per_wall_s": analyze_rate,
        "serve_vs_analyze": (audio / wall) / analyze_rate if analyze_rates else None,
        "corrupt": sorted({(r["name"], r["status"], r["detail"]) for r in bad}), "corrupt_sent": len(bad),
        "rss_mb": {"start": rss[0][1] if rss else None, "first_quarter_median": statistics.median(first) if rss else None,
                   "last_quarter_median": statistics.median(last) if rss else None, "peak": max(m for _, m in rss) if rss else None, "samples": len(rss)},
    }  # fmt: skip


def markdown(result: dict, args) -> str:
    s = result["summary"]
    lines = [
        (f"# serve_load: {args.clients} clients, {args.duration:g} s, lengths {args.lengths} s (weights {args.weights}), {args.corrupt} corrupt uploads; "
         f"model {result['model']}; {platform.processor() or platform.machine()}"),
        "",
        "| requests ok | failed | requests/s | p50 latency | p95 latency | audio s per wall s | `analyze` audio s per wall s | serve / analyze |",
        "|---|---|---|---|---|---|---|---|",
        (f"| {s['ok']} | {s['failed']} | {s['requests_per_s']:.2f} | {s['p50_s']:.2f} s | {s['p95_s']:.2f} s | {s['audio_per_wall_s']:.1f} | "
         f"{s['analyze_audio_per_wall_s']:.1f} (rounds {', '.join(f'{r:.1f}' for r in result['analyze_rates'])}) | "
         f"{s['serve_vs_analyze']:.2f} |" if s["serve_vs_analyze"] is not None else ""),
        "",
        "| length | requests | p50 | p95 |",
        "|---|---|---|---|",
        *[f"| {name} | {v['requests']} | {v['p50_s']:.2f} s | {v['p95_s']:.2f} s |" for name, v in s["by_length"].items()],
        "",
        (f"Corrupt uploads ({s['corrupt_sent']} sent): " + "; ".join(f"{name} -> {status} ({detail})" for name, status, detail in s["corrupt"]) if s["corrupt"] else "Corrupt uploads: none sent"),
        "",
        (f"Server RSS (MB): {s['rss_mb']['start']:.0f} at the start, median {s['rss_mb']['first_quarter_median']:.0f} in the first quarter and "
         f"{s['rss_mb']['last_quarter_median']:.0f} in the last, peak {s['rss_mb']['peak']:.0f} ({s['rss_mb']['samples']} samples); "
         f"upload folder left {'empty' if not result['uploads_left'] else 'with ' + str(len(result['uploads_left'])) + ' entries'}."),
    ]  # fmt: skip
    if s["failures"]:
        lines += ["", "Failures:", *[f"- {f}" for f in s["failures"][:20]]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "serve_load")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=180.0, help="seconds during which clients start new requests")
    p.add_argument("--lengths", default="10,60,600", help="recording lengths in seconds, comma-separated")
    p.add_argument("--weights", default="6,3,1", help="how often each length is posted, comma-separated")
    p.add_argument("--corrupt", type=int, default=4, help="corrupt uploads (truncated OGG, text, empty, in turn), one every --clients uploads from the start")
    p.add_argument("--model", type=Path, help="the model to serve (default: a calibrated random --arch checkpoint)")
    p.add_argument("--arch", default="cnn_efficientnet_b0")
    p.add_argument("--num-classes", type=int, default=182)
    p.add_argument("--detections", type=int, default=1000, help="(window, species) pairs >= 0.1 on the longest recording (0: no calibration)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--queue", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--analyze-rounds", type=int, default=2, help="analyze runs, half before the load and half after")
    p.add_argument("--request-timeout", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from birdcall.testing.server import ServerProcess

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    lengths = [float(v) for v in args.lengths.split(",")]
    weights = [float(v) for v in args.weights.split(",")]
    if len(weights) != len(lengths):
        raise SystemExit("--weights needs one weight per length")
    files = make_recordings(out, lengths)
    names = [f"{length:g}s" for length in lengths]
    model = args.model or make_model(out, args.arch, args.num_classes, args.detections, files[names[lengths.index(max(lengths))]])
    good = [files[n] for n in names]
    run_analyze(model, good[:1], out / "analyze-warmup")  # makes the cached OpenVINO export of a checkpoint, before any timing
    from birdcall.audio import info

    audio_total = sum(info(f).duration for f in good)
    analyze_runs = []
    before = (args.analyze_rounds + 1) // 2
    for i in range(before):
        analyze_runs.append(run_analyze(model, good, out / f"analyze-{i}"))

    corrupt = [("corrupt-truncated", "corrupt-text", "corrupt-empty")[i % 3] for i in range(args.corrupt)]
    plan = schedule(names, weights, corrupt, count=100_000, every=max(2, args.clients), seed=args.seed)
    uploads = out / "uploads"
    uploads.mkdir(exist_ok=True)
    key = "serve-load"
    server = ServerProcess(model, "--jobs", str(args.jobs), "--queue", str(args.queue), "--workers", str(args.workers), "--timeout", str(args.request_timeout),
                           tmp_dir=uploads, api_key=key, log=out / "server.log")  # fmt: skip
    with server:
        sampler = RssSampler(server.pid)
        sampler.start()
        records, wall = load_test(server.url, key, files, plan, args.clients, args.duration, args.request_timeout)
        sampler.stopped.set()
        sampler.join()
        health = server.get_json("/v1/health")
    for i in range(before, args.analyze_rounds):
        analyze_runs.append(run_analyze(model, good, out / f"analyze-{i}"))
    rates = [audio_total / run["seconds"] for run in analyze_runs]
    result = {
        "model": f"{Path(model).name} ({health['backend']})", "analyze_rates": rates, "analyze_runs": analyze_runs, "records": records,
        "rss": sampler.samples, "uploads_left": sorted(p.name for p in uploads.iterdir()), "server_exit": server.returncode,
        "summary": summarise(records, wall, rates, sampler.samples, names), "args": {k: str(v) for k, v in vars(args).items()},
    }  # fmt: skip
    (out / "serve_load.json").write_text(json.dumps(result, indent=1))
    print(markdown(result, args))
    return 0 if result["summary"]["failed"] == 0 and not result["uploads_left"] else 1


if __name__ == "__main__":
    sys.exit(main())
