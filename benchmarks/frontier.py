"""Accuracy against speed: one point per system of the soundscape benchmark, and the frontier they draw.

Usage:
    .venv/bin/python benchmarks/frontier.py RUN/benchmark.json [RUN/benchmark-fold0.json ...] [--fold K]
        [--include REGEX] [--out benchmarks/frontier.png]

Reads the tables ``nips4b_soundscape_cv.py`` writes (every system scored on the same continuous recordings, in one
run folder) and plots window cmAP (pooled over the folds, or fold ``K``'s with ``--fold``: a fold-0 screen is then
comparable with the 5-fold rows' fold-0 column) against inference real-time factor (audio seconds per wall
second on the benchmark's recordings, 2 cores, decode and features included), log scale. The points on the upper
right that no other point beats on both axes form the frontier (a line). Rows with ``+ smooth`` are left out
unless ``--include`` asks for them. Prints the points as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def points(paths: list[Path], *, fold: int | None, include: str | None) -> list[dict]:
    """``{"system", "cmap", "rtf"}`` per system (the first file naming a system wins)."""
    seen: dict[str, dict] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for name, res in data["systems"].items():
            if name in seen or (include is None and "+ smooth" in name) or (include is not None and not re.search(include, name)):
                continue
            if fold is None:
                if len(res["folds"]) < data.get("folds", 5):
                    continue  # a screen: not pooled over every fold
                cmap = res["pooled"]["cmap"]
            else:
                row = res["folds"].get(str(fold))
                if row is None:
                    continue
                cmap = row["cmap"]
            seen[name] = {"system": name, "cmap": float(cmap), "rtf": float(res["pooled"]["rtf"])}
    return list(seen.values())


def frontier(pts: list[dict]) -> list[dict]:
    """The points no other point beats on both cmAP and speed, by increasing speed."""
    keep = [p for p in pts if not any(q is not p and q["cmap"] >= p["cmap"] and q["rtf"] >= p["rtf"] and (q["cmap"], q["rtf"]) != (p["cmap"], p["rtf"]) for q in pts)]
    return sorted(keep, key=lambda p: p["rtf"])


def plot(pts: list[dict], out: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    front = frontier(pts)
    ax.plot([p["rtf"] for p in front], [p["cmap"] for p in front], "-", color="tab:gray", lw=1, zorder=1, label="frontier")
    for p in pts:
        colour = "tab:orange" if "BirdNET" in p["system"] or "birdnet" in p["system"] else "tab:blue"
        ax.scatter(p["rtf"], p["cmap"], color=colour, zorder=2)
        ax.annotate(short_name(p["system"]), (p["rtf"], p["cmap"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("inference speed (× real time, 2 CPU cores, log scale)")
    ax.set_ylabel("window cmAP on continuous recordings")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def short_name(name: str) -> str:
    name = re.sub(r"^(birdcall|CNN) ", "", name)
    return name.replace("cnn_mobilenetv3_large", "mnv3-L").replace("birdnet_", "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tables", nargs="+", type=Path)
    p.add_argument("--fold", type=int, default=None)
    p.add_argument("--include", default=None, help="regex of the systems to plot (default: all but '+ smooth' rows)")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("frontier.png"))
    args = p.parse_args(argv)
    pts = points(args.tables, fold=args.fold, include=args.include)
    if not pts:
        raise SystemExit("no system to plot (check --fold / --include)")
    where = "pooled over 5 folds" if args.fold is None else f"fold {args.fold}"
    plot(pts, args.out, title=f"NIPS4B soundscape benchmark: accuracy vs speed ({where})")
    front = {p["system"] for p in frontier(pts)}
    print("| system | cmAP | RTF (× real time) | on the frontier |\n|---|---|---|---|")
    for q in sorted(pts, key=lambda q: -q["cmap"]):
        print(f"| {q['system']} | {q['cmap']:.4f} | {q['rtf']:.0f} | {'yes' if q['system'] in front else ''} |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
