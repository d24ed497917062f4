"""`birdcall serve` through the typer app: its refusals are one line and exit 2, before any socket is bound."""

from typer.testing import CliRunner

from birdcall.cli import app

runner = CliRunner()


def test_a_missing_model_is_one_line(tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nowhere.onnx"), "--port", "0"])
    assert result.exit_code == 2 and "error: " in result.output and "nowhere.onnx: model not found" in result.output


def test_bad_settings_are_one_line(tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "m.onnx"), "--workers", "0"])
    assert result.exit_code == 2 and "serve: workers must be a positive integer, got 0" in result.output


def test_without_the_serve_extra_the_error_names_it(tmp_path, monkeypatch):
    from birdcall.serve import server

    monkeypatch.setattr(server, "missing_packages", lambda: ["fastapi", "uvicorn"])
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "birdcall serve needs fastapi, uvicorn: pip install 'birdcall[serve]' (make setup installs it)" in result.output
