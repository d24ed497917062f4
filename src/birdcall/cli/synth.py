"""`birdcall synth`: write the synthetic chorus data set (a thin wrapper over :func:`birdcall.synth.make_dataset`)."""

from __future__ import annotations

import enum
import time
from pathlib import Path

import typer

from ._common import out, user_errors

_MAX_LISTED_SPECIES = 20


class AudioFormat(str, enum.Enum):
    """Audio file formats ``birdcall synth`` can write."""

    ogg = "ogg"
    flac = "flac"
    wav = "wav"


def synth(
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the data set into (created if needed)."),
    species: int = typer.Option(12, "--species", "-n", help="Number of target species."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and options give the same data set."),
    clips_per_species: int = typer.Option(20, "--clips-per-species", help="Training clips per species."),
    background: int = typer.Option(20, "--background", help="Noise-only clips in background/."),
    soundscapes: int = typer.Option(3, "--soundscapes", help="Number of long soundscape recordings."),
    soundscape_duration: float = typer.Option(180.0, "--soundscape-duration", help="Seconds per soundscape."),
    snr_db: tuple[float, float] = typer.Option((-3.0, 20.0), "--snr-db", help="SNR range of calls in dB (LOW HIGH)."),
    variation: float = typer.Option(1.0, "--variation", help="Scale of per-individual pitch and tempo variation."),
    sample_rate: int = typer.Option(32_000, "--sample-rate", help="Audio sample rate in Hz (>= 24000)."),
    audio_format: AudioFormat = typer.Option(AudioFormat.ogg, "--format", help="Audio file format."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a data set that birdcall synth wrote in OUT before (never one it did not write)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Generate a synthetic BirdCLEF-layout data set: train_audio/, background/, soundscapes/ and the CSVs."""
    from ..synth import SynthConfig, make_dataset  # scipy and friends: imported only when the command runs

    started = time.perf_counter()
    with user_errors():
        config = SynthConfig(
            num_species=species,
            seed=seed,
            clips_per_species=clips_per_species,
            num_background=background,
            num_soundscapes=soundscapes,
            soundscape_duration=soundscape_duration,
            snr_db=snr_db,
            variation=variation,
            sample_rate=sample_rate,
            audio_format=AudioFormat(audio_format).value,
        )
        dataset = make_dataset(out_dir, config, overwrite=overwrite, show_progress=not quiet)
    _print_summary(dataset, time.perf_counter() - started)


def _print_summary(dataset, seconds: float) -> None:
    from rich.table import Table

    table = Table(title=f"{len(dataset.species)} synthetic species", title_justify="left")
    for column in ("code", "scientific name", "common name", "call", "band (Hz)"):
        table.add_column(column)
    for spec in dataset.species[:_MAX_LISTED_SPECIES]:
        band = f"{spec.low_hz:.0f}-{spec.high_hz:.0f}"
        table.add_row(spec.code, spec.scientific_name, spec.common_name, spec.family, band)
    if len(dataset.species) > _MAX_LISTED_SPECIES:
        table.add_row("...", f"({len(dataset.species) - _MAX_LISTED_SPECIES} more in taxonomy.csv)", "", "", "")
    out.print(table)
    cfg = dataset.config
    out.print(
        f"Wrote [bold]{dataset.root}[/]: {len(dataset.train_files)} training clips, "
        f"{len(dataset.background_files)} background clips, {len(dataset.soundscape_files)} soundscapes "
        f"of {cfg.soundscape_duration:g} s ({dataset.num_windows} scored 5-s windows), "
        f"{cfg.audio_format} at {cfg.sample_rate} Hz, seed {cfg.seed}, in {seconds:.1f} s.",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""
    app.command("synth")(synth)
