"""Progress bars (rich) with rate and ETA, shared by training, prediction and the demo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

T = TypeVar("T")

__all__ = ["audio_rate", "make_progress", "track"]

_console = Console(stderr=True, soft_wrap=True)


def audio_rate(audio_seconds: float, elapsed: float) -> str:
    """The rate column of an inference run: ``"12.5 min audio, 180x real time"`` (hours from one hour of audio)."""
    amount = f"{audio_seconds / 3600:.2f} h" if audio_seconds >= 3600 else f"{audio_seconds / 60:.1f} min"
    return f"{amount} audio, {audio_seconds / max(elapsed, 1e-9):.0f}x real time"


def make_progress(*, disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=_console,
        disable=disable,
        transient=False,
    )


def track(iterable: Iterable[T], *, total: int | None = None, description: str = "", disable: bool = False, unit: str = "it") -> Iterator[T]:
    """Iterate with a progress bar showing count, rate (``unit``/s) and ETA."""
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    with make_progress(disable=disable) as progress:
        task = progress.add_task(description, total=total, rate="")
        for item in iterable:
            yield item
            speed = progress.tasks[0].speed
            progress.update(task, advance=1, rate=f"{speed:.1f} {unit}/s" if speed else "")
