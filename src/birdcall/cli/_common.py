"""Helpers shared by the CLI modules: error reporting and a rich console."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from ..errors import BirdcallError

console = Console(stderr=True, soft_wrap=True)  # one message, one line: never wrap paths
out = Console(soft_wrap=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`BirdcallError` into a one-line ``error: ...`` message and exit code 2."""
    try:
        yield
    except BirdcallError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
