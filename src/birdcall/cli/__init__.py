"""The ``birdcall`` command line: a thin typer layer over the Python API.

One module per command group; each command parses its arguments, calls one library function and writes or
prints the result. Heavy imports (torch, timm) happen inside the commands so ``birdcall --help`` is fast.
"""

from __future__ import annotations

import typer

from . import analyze as _analyze
from . import config as _config
from . import demo as _demo
from . import embed as _embed
from . import evaluate as _evaluate
from . import export as _export
from . import predict as _predict
from . import pseudo_label as _pseudo_label
from . import recipes as _recipes
from . import score as _score
from . import search as _search
from . import serve as _serve
from . import synth as _synth
from . import train as _train

app = typer.Typer(
    name="birdcall",
    help="Recognise bird species by sound in long field recordings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"birdcall {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Recognise bird species by sound in long field recordings."""


_synth.register(app)
_score.register(app)
_evaluate.register(app)
_train.register(app)
_recipes.register(app)
_predict.register(app)
_export.register(app)
_analyze.register(app)
_embed.register(app)
_search.register(app)
_serve.register(app)
_pseudo_label.register(app)
_demo.register(app)
_config.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
