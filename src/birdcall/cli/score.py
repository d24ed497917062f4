"""``birdcall score``: score a BirdCLEF-style submission CSV against a solution CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import ParameterError
from ._common import console, format_score, out, score_table, user_errors


def _jsonable(value: Any) -> Any:
    """Replace NaN with None so the output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _print_summary(result: dict[str, Any]) -> None:
    out.print(score_table("Scores", result))
    out.print(f"{result['num_samples']} rows, {result['num_species']} species", highlight=False)
    ignored = []
    if result["num_extra_species"]:
        ignored.append(f"{result['num_extra_species']} species column(s)")
    if result["num_extra_rows"]:
        ignored.append(f"{result['num_extra_rows']} row(s)")
    if ignored:
        message = f"ignored {' and '.join(ignored)} of the submission not in the solution"
        out.print(message, highlight=False, soft_wrap=True)


def _print_per_species(result: dict[str, Any]) -> None:
    table = Table(title="Per species (unpadded AP)", title_justify="left")
    table.add_column("species")
    table.add_column("AP", justify="right")
    table.add_column("support", justify="right")
    for row in result["per_species"]:
        table.add_row(row["species"], format_score(row["ap"]), str(row["support"]))
    out.print(table)


def _write_json(path: Path, result: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise ParameterError(f"--json {path}: cannot write: {err.strerror or err}") from None


def score(
    solution: Path = typer.Argument(
        ..., show_default=False, help="Solution CSV: row_id plus one 0/1 column per species."
    ),
    submission: Path = typer.Argument(
        ..., show_default=False, help="Submission CSV: row_id plus one score column per species."
    ),
    per_species: bool = typer.Option(False, "--per-species", help="Also print AP and support for each species."),
    json_path: Optional[Path] = typer.Option(
        None, "--json", metavar="OUT.json", dir_okay=False, help="Also write every score to this JSON file."
    ),
    padding_factor: int = typer.Option(
        5, "--padding-factor", min=0, help="Rows of ones appended for padded cmAP (BirdCLEF 2023 uses 5)."
    ),
) -> None:
    """Score a submission: padded cmAP (BirdCLEF 2023), cmAP and macro ROC-AUC.

    Rows are matched by row_id and columns by species name; extra submission columns are ignored.
    """
    from ..eval.submission import score_files

    with user_errors():
        result = score_files(solution, submission, padding_factor=padding_factor)
        _print_summary(result)
        if per_species:
            _print_per_species(result)
        if json_path is not None:
            _write_json(json_path, result)
            console.print(f"wrote {json_path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``score`` command to ``app``."""
    app.command("score")(score)
