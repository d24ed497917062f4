"""Progress bars (rich) with rate and ETA, shared by training, prediction and the demo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

T = TypeVar("T")

__all__ = ["track", "make_progress"]

_console = Console(stderr=True, soft_wrap=True)


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
