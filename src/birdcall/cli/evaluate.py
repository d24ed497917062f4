"""``birdcall evaluate``: metrics, figures, an error gallery and one self-contained HTML report.

Three kinds of input, one of them per call:

* ``--solution S.csv --submission P.csv [--data SOUNDSCAPES]``: a BirdCLEF submission (the soundscapes give
  the gallery its audio);
* ``--model MODEL --data DATA [--solution S.csv]``: predict labelled clips (a BirdCLEF-layout data set) or
  soundscapes with their solution, then evaluate;
* ``--run RUN [--data DATA]``: the out-of-fold predictions of a training run (the data set gives primary labels,
  audio and embeddings).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, format_score, out, score_table, user_errors


def _print_summary(summary: dict) -> None:
    table = score_table("Evaluation", summary)
    table.add_row("micro ROC-AUC", format_score(summary["micro_auc"]))
    table.add_row(f"top-1 accuracy ({summary['num_primary']} with a primary label)", format_score(summary["top1_accuracy"]))
    table.add_row(f"ECE ({summary['num_bins']} bins)", format_score(summary["ece"]))
    out.print(table)
    out.print(f"{summary['num_samples']} samples, {summary['num_species']} species", highlight=False)


def _check_combination(solution, submission, model, run, data) -> str:
    from ..errors import ParameterError

    given = [name for name, value in (("--submission", submission), ("--model", model), ("--run", run)) if value is not None]
    if len(given) != 1:
        raise ParameterError(
            "give exactly one input: --solution S.csv --submission P.csv, --model MODEL --data DATA, or --run RUN"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if submission is not None and solution is None:
        raise ParameterError("--submission needs --solution")
    if model is not None and data is None:
        raise ParameterError("--model needs --data (a BirdCLEF-layout data set, or soundscapes with their solution)")
    if run is not None and solution is not None:
        raise ParameterError("--run evaluates the run's out-of-fold predictions: --solution does not apply")
    return given[0].lstrip("-")


def evaluate(
    out_dir: Path = typer.Option(..., "--out", help="Report folder (created): report.html, metrics.json, per_species.csv, figures/."),
    solution: Path | None = typer.Option(None, "--solution", help="Solution CSV (row_id + one 0/1 column per species)."),
    submission: Path | None = typer.Option(None, "--submission", help="Submission CSV to evaluate against --solution."),
    model: Path | None = typer.Option(None, "--model", help="Model to evaluate on --data: .safetensors, run folder, .onnx or .xml."),
    run: Path | None = typer.Option(None, "--run", help="Training run folder: evaluate its out-of-fold predictions (oof.csv)."),
    data: Path | None = typer.Option(
        None, "--data", help="Labelled data: a BirdCLEF-layout data set, or soundscapes (with --solution or a solution.csv beside them)."
    ),
    title: str | None = typer.Option(None, "--title", help="Heading of the report."),
    gallery_size: int = typer.Option(8, "--gallery-size", min=0, help="False positives and false negatives shown each (0: none)."),
    worst: int = typer.Option(5, "--worst", min=0, help="Weakest species drawn in the PR and ROC figures."),
    embeddings: bool = typer.Option(True, "--embeddings/--no-embeddings", help="Compute penultimate embeddings for the t-SNE map."),
    max_embeddings: int = typer.Option(2000, "--max-embeddings", min=5, help="At most this many samples in the t-SNE map."),
    padding_factor: int = typer.Option(5, "--padding-factor", min=0, help="Rows of ones appended for padded cmAP."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Windows per model call."),
    threads: int | None = typer.Option(None, "--threads", help="Intra-op threads of the model backend."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Evaluate predictions and write one self-contained HTML report to open and listen to.

    Per-species AP, ROC-AUC, best-F1 threshold, calibration, confusion matrix, t-SNE of embeddings, training
    curves and the top false positives and negatives with spectrogram and audio.
    """
    from ..eval import from_model, from_run, from_submission, write_report

    with user_errors():
        kind = _check_combination(solution, submission, model, run, data)
        if kind == "submission":
            inputs = from_submission(solution, submission, audio=data)
        elif kind == "model":
            inputs = from_model(model, data, solution=solution, batch_size=batch_size, threads=threads, embeddings=embeddings,
                                max_embeddings=max_embeddings, show_progress=not quiet)  # fmt: skip
        else:
            if threads:
                import torch

                torch.set_num_threads(threads)
            inputs = from_run(run, data=data, embeddings=embeddings, max_embeddings=max_embeddings, batch_size=batch_size)
        result = write_report(inputs, out_dir, title=title, gallery_size=gallery_size, worst=worst, padding_factor=padding_factor)
    for note in inputs.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    _print_summary(result.metrics.summary)
    out.print(f"wrote {result.html}, {result.metrics_json.name}, {result.per_species_csv.name}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    app.command("evaluate")(evaluate)
