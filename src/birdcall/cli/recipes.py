"""`birdcall recipes`: the training recipes shipped with birdcall (for ``birdcall train --recipe NAME``)."""

from __future__ import annotations

import typer

from ._common import out


def register(app: typer.Typer) -> None:
    app.command("recipes")(recipes)


def recipes() -> None:
    """List the shipped training recipes (name and description); `birdcall train --recipe NAME` trains one."""
    from ..train.recipes import DEFAULT_RECIPE, list_recipes

    for name, description in list_recipes().items():
        mark = " (default)" if name == DEFAULT_RECIPE else ""
        out.print(f"{name}{mark}  {description}", highlight=False)
