"""Tests for ``birdcall score`` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from birdcall.cli import score as score_cli

# Same 4-row, 2-species case as tests/unit/test_metrics.py (hand-computed there):
# padded cmAP 47/48 = 0.979167, cmAP 2/3 = 0.666667, macro AUC 17/24 = 0.708333, AP 5/6 and 1/2.
# The submission has its rows reversed, its columns swapped, one extra species and one extra row.
SOLUTION_CSV = "row_id,amecro,barswa,cangoo\nr1,1,0,0\nr2,0,1,0\nr3,1,0,0\nr4,0,0,0\n"
SUBMISSION_CSV = (
    "row_id,cangoo,barswa,amecro,extra\nr4,0.1,0.4,0.1,1\nr3,0.2,0.2,0.3,1\nr2,0.3,0.5,0.8,1\nr1,0.4,0.6,0.9,1\n"
    "r5,0,0,0,0\n"
)
# cangoo has no positives: padded AP 1, so padded cmAP = (55/56 + 41/42 + 1) / 3 = 0.986111.


@pytest.fixture
def app() -> typer.Typer:
    """A fresh app holding only ``score`` (independent of the other command modules)."""
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test root, so ``score`` stays a subcommand."""

    score_cli.register(app)
    return app


@pytest.fixture
def files(tmp_path):
    solution = tmp_path / "solution.csv"
    submission = tmp_path / "submission.csv"
    solution.write_text(SOLUTION_CSV)
    submission.write_text(SUBMISSION_CSV)
    return solution, submission


def test_score_prints_metrics(app, files):
    result = CliRunner().invoke(app, ["score", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "0.986111" in result.stdout  # padded cmAP
    assert "0.666667" in result.stdout  # cmAP over amecro and barswa
    assert "0.708333" in result.stdout  # macro ROC-AUC
    assert "padded cmAP" in result.stdout
    assert "ignored 1 species column(s) and 1 row(s)" in result.stdout
    assert "cangoo" not in result.stdout  # no per-species table by default


def test_score_per_species(app, files):
    result = CliRunner().invoke(app, ["score", *map(str, files), "--per-species"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.count("│") == 4}
    assert "0.833333" in lines["amecro"] and lines["amecro"].split()[-2] == "2"
    assert "0.500000" in lines["barswa"] and lines["barswa"].split()[-2] == "1"
    assert "n/a" in lines["cangoo"] and lines["cangoo"].split()[-2] == "0"


def test_score_writes_strict_json(app, files, tmp_path):
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["score", *map(str, files), "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["padded_cmap"] == pytest.approx((55 / 56 + 41 / 42 + 1) / 3, abs=1e-12)
    assert data["cmap"] == pytest.approx(2 / 3, abs=1e-12)
    assert data["num_species_scored"] == 2
    assert data["submission"] == str(files[1])
    assert data["per_species"][2] == {"species": "cangoo", "ap": None, "support": 0}  # NaN written as null


def test_score_padding_factor_option(app, files):
    result = CliRunner().invoke(app, ["score", *map(str, files), "--padding-factor", "0"])
    assert result.exit_code == 0, result.output
    assert "padding 0" in result.stdout
    assert "0.444444" in result.stdout  # (5/6 + 1/2 + 0) / 3: unpadded, cangoo scores 0


def _one_line_error(result, path) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    return lines[0]


def test_bad_submission_exits_2_with_one_line(app, files, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("row_id,amecro\nr1,0.5\n")
    result = CliRunner().invoke(app, ["score", str(files[0]), str(bad)])
    line = _one_line_error(result, bad)
    assert "species columns are missing" in line


def test_bad_solution_exits_2_with_one_line(app, files, tmp_path):
    bad = tmp_path / "truth.csv"
    bad.write_text("row_id,amecro\nr1,3\n")
    result = CliRunner().invoke(app, ["score", str(bad), str(files[1])])
    assert "truth values must be 0 or 1" in _one_line_error(result, bad)


def test_missing_file_exits_2(app, files, tmp_path):
    missing = tmp_path / "nope.csv"
    result = CliRunner().invoke(app, ["score", str(files[0]), str(missing)])
    assert _one_line_error(result, missing).endswith("no such file")


def test_unwritable_json_exits_2(app, files, tmp_path):
    out = tmp_path / "no_such_dir" / "scores.json"
    result = CliRunner().invoke(app, ["score", *map(str, files), "--json", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --json") and "cannot write" in lines[0]


def test_registered_on_birdcall_app(files):
    from birdcall.cli import app

    runner = CliRunner()
    assert "score" in runner.invoke(app, ["--help"]).stdout
    result = runner.invoke(app, ["score", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "0.986111" in result.stdout
