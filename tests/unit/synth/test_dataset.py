"""The synthetic data-set writer: layout, tables, label rule, determinism, SNR, backgrounds, errors."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import stft

from birdcall.audio import load
from birdcall.errors import ParameterError
from birdcall.synth import SynthConfig, make_dataset, species_bank, window_labels

SR = 32_000
SMALL = dict(num_species=4, clips_per_species=3, num_background=2, num_soundscapes=2, soundscape_duration=33.0,
             audio_format="flac")  # fmt: skip
CSV_FILES = ("train_metadata.csv", "events.csv", "taxonomy.csv", "solution.csv", "soundscape_events.csv")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    return make_dataset(root, seed=5, **SMALL)


def _read_audio(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="int16")
    assert rate == SR
    return data


def test_layout_and_tables(small):
    root = small.root
    codes = [spec.code for spec in species_bank(4, seed=5)]
    assert list(small.species_codes) == codes

    taxonomy = pd.read_csv(root / "taxonomy.csv")
    assert list(taxonomy.columns) == ["species_code", "scientific_name", "common_name", "taxon"]
    assert taxonomy.species_code.tolist() == codes == sorted(codes)

    meta = pd.read_csv(root / "train_metadata.csv")
    required = ("filename", "primary_label", "secondary_labels", "labels", "duration", "scientific_name", "common_name")
    assert set(required) <= set(meta.columns)
    assert len(meta) == 4 * 3
    assert meta.groupby("primary_label").size().to_dict() == {code: 3 for code in codes}
    names = dict(zip(taxonomy.species_code, taxonomy.scientific_name))
    for row in meta.itertuples():
        assert row.filename == f"{row.primary_label}/{Path(row.filename).name}"
        assert Path(row.filename).name.startswith(f"{row.primary_label}_") and row.filename.endswith(".flac")
        secondary = ast.literal_eval(row.secondary_labels)
        assert isinstance(secondary, list) and row.primary_label not in secondary and set(secondary) <= set(codes)
        assert sorted(row.labels.split(" ")) == sorted([row.primary_label, *secondary])
        assert names[row.primary_label] == row.scientific_name
        audio = _read_audio(root / "train_audio" / row.filename)
        assert len(audio) / SR == pytest.approx(row.duration, abs=1e-3)
        assert 2.0 <= row.duration <= 5.0 + 1e-9

    # every call of a training clip is listed in events.csv, inside the clip, and its species is labelled
    events = pd.read_csv(root / "events.csv")
    assert list(events.columns) == ["filename", "start", "end", "species_code", "sound_type"]
    by_file = meta.set_index("train_audio/" + meta.filename)
    assert set(events.filename) == set(by_file.index)
    for row in events.itertuples():
        clip = by_file.loc[row.filename]
        assert 0 <= row.start < row.end <= clip.duration + 1e-4
        assert row.species_code in clip.labels.split(" ")
    for filename, clip in by_file.iterrows():
        assert set(events[events.filename == filename].species_code) == set(clip.labels.split(" "))

    assert sorted(p.name for p in (root / "background").iterdir()) == ["background_0001.flac", "background_0002.flac"]
    assert sorted(p.name for p in (root / "soundscapes").iterdir()) == ["soundscape_0001.flac", "soundscape_0002.flac"]
    for name in small.soundscape_files:
        assert len(_read_audio(root / name)) == round(33.0 * SR)
    assert small.config == SynthConfig(seed=5, **SMALL)
    assert (root / "synth_config.yaml").is_file()
    assert not list(root.rglob(".*.tmp"))  # no temporary files left behind


def test_solution_windows_cover_every_soundscape(small):
    solution = pd.read_csv(small.root / "solution.csv", dtype={"row_id": str})
    assert list(solution.columns) == ["row_id", *small.species_codes]
    expected = [f"soundscape_{k:04d}_{end}" for k in (1, 2) for end in range(5, 5 * math.ceil(33 / 5) + 1, 5)]
    assert solution.row_id.tolist() == expected  # 7 windows each: the last one (30-35 s) is short
    assert small.num_windows == len(expected) == 14
    assert set(np.unique(solution.iloc[:, 1:].to_numpy())) <= {0, 1}


def _labels_from_events(events: pd.DataFrame, stem: str, codes: list[str], duration: float) -> np.ndarray:
    """The documented rule, written independently: overlap >= min(0.5 s, half the call)."""
    labels = np.zeros((math.ceil(duration / 5), len(codes)), dtype=int)
    for row in events[events.soundscape == stem].itertuples():
        for w in range(labels.shape[0]):
            overlap = min(row.end, 5 * (w + 1)) - max(row.start, 5 * w)
            if overlap >= min(0.5, (row.end - row.start) / 2) - 1e-9:
                labels[w, codes.index(row.species_code)] = 1
    return labels


def test_solution_agrees_with_soundscape_events(small):
    root, codes = small.root, list(small.species_codes)
    events = pd.read_csv(root / "soundscape_events.csv")
    assert list(events.columns) == ["soundscape", "start", "end", "species_code"]
    assert set(events.species_code) <= set(codes)
    solution = pd.read_csv(root / "solution.csv")
    for k, stem in enumerate(["soundscape_0001", "soundscape_0002"]):
        truth = solution[solution.row_id.str.startswith(stem + "_")].iloc[:, 1:].to_numpy()
        np.testing.assert_array_equal(truth, _labels_from_events(events, stem, codes, 33.0))
        mine = events[events.soundscape == stem]
        assert ((mine.start >= 0) & (mine.end <= 33.0) & (mine.start < mine.end)).all()
    assert events.species_code.nunique() == 4  # every species sings in some soundscape
    assert solution.iloc[:, 1:].to_numpy().sum() > 0


def test_window_label_rule_edges():
    codes = ["aaaaaa", "bbbbbb"]
    events = [
        (4.6, 6.0, "aaaaaa"),  # 0.4 s in window 0 (< 0.5 s and < half the call), 1.0 s in window 1
        (9.9, 10.1, "bbbbbb"),  # 0.2-s call, exactly half in windows 1 and 2
        (10.0, 14.9, "cccccc"),  # not a target species: ignored
    ]
    labels = window_labels(events, duration=12.0, species_codes=codes)
    np.testing.assert_array_equal(labels, [[0, 0], [1, 1], [0, 1]])
    assert labels.dtype == np.uint8


def test_soundscapes_have_empty_and_busy_windows(tmp_path):
    ds = make_dataset(tmp_path / "d", num_species=6, clips_per_species=1, num_background=0, num_soundscapes=1,
                      soundscape_duration=120.0, audio_format="wav", empty_window_fraction=0.25, seed=2)  # fmt: skip
    truth = pd.read_csv(ds.solution_path).iloc[:, 1:].to_numpy()
    per_window = truth.sum(axis=1)
    assert (per_window == 0).mean() >= 0.25 and (per_window >= 2).any()  # empty windows and overlapping species
    # windows with calls are louder in the species' bands than empty ones (labels match the audio)
    y = load(ds.soundscapes_dir / "soundscape_0001.wav").astype(np.float64).reshape(-1, 5 * SR)
    _, _, z = stft(y, fs=SR, nperseg=1024, axis=-1)
    band_power = np.mean(np.abs(z[:, 40:330]) ** 2, axis=(1, 2))  # 1.25-10.3 kHz
    assert np.median(band_power[per_window > 0]) > 2 * np.median(band_power[per_window == 0])


@pytest.mark.integration
def test_deterministic_for_a_seed_and_different_across_seeds(tmp_path, small):
    again = make_dataset(tmp_path / "again", seed=5, **SMALL)
    for name in CSV_FILES:
        assert (again.root / name).read_text() == (small.root / name).read_text(), name
    files = [f"train_audio/{name}" for name in small.train_files]
    files += [*small.background_files, *small.soundscape_files]
    for name in files:
        np.testing.assert_array_equal(_read_audio(again.root / name), _read_audio(small.root / name))

    other = make_dataset(tmp_path / "other", seed=6, **SMALL)
    assert (other.root / "taxonomy.csv").read_text() != (small.root / "taxonomy.csv").read_text()
    assert not np.array_equal(_read_audio(other.root / files[-1]), _read_audio(small.root / files[-1]))

    # every part has its own random stream: fewer soundscapes leave the training clips as they were
    fewer = make_dataset(tmp_path / "fewer", seed=5, **{**SMALL, "num_soundscapes": 1})
    assert (fewer.root / "train_metadata.csv").read_text() == (small.root / "train_metadata.csv").read_text()
    np.testing.assert_array_equal(_read_audio(fewer.root / files[0]), _read_audio(small.root / files[0]))


def _measured_snr_db(ds) -> np.ndarray:
    """Per clip: power inside the calls minus noise power, over the noise power outside them."""
    meta, events = pd.read_csv(ds.train_metadata_path), pd.read_csv(ds.train_events_path)
    snrs = []
    for filename in meta.filename:
        y = load(ds.train_audio_dir / filename).astype(np.float64)
        inside = np.zeros(len(y), dtype=bool)
        for row in events[events.filename == f"train_audio/{filename}"].itertuples():
            inside[round(row.start * SR) : round(row.end * SR)] = True
        noise = np.mean(y[~inside] ** 2)
        snrs.append(10 * np.log10(max(np.mean(y[inside] ** 2) - noise, 1e-20) / noise))
    return np.array(snrs)


def test_snr_knob_sets_measured_snr(tmp_path):
    common = dict(num_species=3, clips_per_species=6, num_background=0, num_soundscapes=0, secondary_prob=0.0,
                  audio_format="flac", seed=1)  # fmt: skip
    low = _measured_snr_db(make_dataset(tmp_path / "low", snr_db=(0.0, 0.0), **common))
    high = _measured_snr_db(make_dataset(tmp_path / "high", snr_db=(12.0, 12.0), **common))
    assert np.median(low) == pytest.approx(0.0, abs=1.5)
    assert np.median(high) == pytest.approx(12.0, abs=1.5)
    assert (high > low + 6).all()


def _tonal_peak_db(y: np.ndarray) -> float:
    """Largest narrow-band excess (dB) in 1-11 kHz after whitening each frequency by its median over time."""
    freqs, _, z = stft(y.astype(np.float64), fs=SR, nperseg=1024)
    power = np.abs(z[(freqs > 1000) & (freqs < 11000)]) ** 2 + 1e-20
    power /= np.median(power, axis=1, keepdims=True)
    return float(10 * np.log10(np.max(power.max(axis=0) / np.median(power, axis=0))))


def test_background_clips_contain_no_calls(tmp_path):
    ds = make_dataset(tmp_path / "d", num_species=4, clips_per_species=4, num_background=8, num_soundscapes=0,
                      snr_db=(10.0, 20.0), num_nontarget=0, audio_format="flac", seed=0)  # fmt: skip
    meta, events = pd.read_csv(ds.train_metadata_path), pd.read_csv(ds.train_events_path)
    assert not any("background" in name for name in [*meta.filename, *events.filename])
    calls = [_tonal_peak_db(load(ds.train_audio_dir / name)) for name in ds.train_files]
    backgrounds = [_tonal_peak_db(load(ds.root / name)) for name in ds.background_files]
    assert len(backgrounds) == 8
    assert min(calls) > 23.0 > max(backgrounds)


def test_ogg_output_decodes(tmp_path):
    ds = make_dataset(tmp_path / "ogg", num_species=2, clips_per_species=2, num_background=1, num_soundscapes=1,
                      soundscape_duration=10.0, seed=3)  # fmt: skip
    meta = pd.read_csv(ds.train_metadata_path)
    assert all(name.endswith(".ogg") for name in meta.filename)
    for row in meta.itertuples():
        y = load(ds.train_audio_dir / row.filename)
        assert len(y) / SR == pytest.approx(row.duration, abs=1e-3) and np.isfinite(y).all() and np.abs(y).max() > 0
    assert len(load(ds.root / "soundscapes" / "soundscape_0001.ogg")) == 10 * SR
    assert len(load(ds.root / "background" / "background_0001.ogg")) == 5 * SR


def test_existing_dataset_needs_overwrite(tmp_path):
    args = dict(num_species=2, clips_per_species=2, num_background=1, num_soundscapes=0, audio_format="wav")
    first = make_dataset(tmp_path / "d", **args)
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="overwrite"):
        make_dataset(tmp_path / "d", **args)
    second = make_dataset(tmp_path / "d", **{**args, "clips_per_species": 1}, overwrite=True)
    assert len(list(second.train_audio_dir.rglob("*.wav"))) == 2 < len(first.train_files)  # stale clips removed
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"  # other files are left alone
    assert json.loads((tmp_path / "d" / ".birdcall-synth.json").read_text())["format"] == "birdcall-synth"



def _real_looking_dataset(root: Path) -> dict[Path, bytes]:
    """A BirdCLEF-layout folder synth did not write (no marker): its files and their bytes."""
    files = {
        root / "train_audio" / "eurrob1" / "XC1234.ogg": b"OggS real recording",
        root / "train_metadata.csv": b"primary_label,filename\neurrob1,eurrob1/XC1234.ogg\n",
        root / "taxonomy.csv": b"species_code\neurrob1\n",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_overwrite_refuses_a_folder_synth_did_not_write(tmp_path):
    root = tmp_path / "real"
    files = _real_looking_dataset(root)
    with pytest.raises(ParameterError) as info:
        make_dataset(root, num_species=2, clips_per_species=1, num_background=0, num_soundscapes=0, audio_format="wav", overwrite=True)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{root}: ") and "not written by `birdcall synth`" in message
    assert {path: path.read_bytes() for path in files} == files  # nothing deleted, nothing changed
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "taxonomy.csv", "train_audio", "train_audio/eurrob1", "train_audio/eurrob1/XC1234.ogg", "train_metadata.csv"]  # nothing added


def test_marker_is_written_first_so_a_killed_run_can_be_overwritten(tmp_path, monkeypatch):
    from birdcall.synth import dataset as synth_dataset

    args = dict(num_species=2, clips_per_species=2, num_background=1, num_soundscapes=0, audio_format="wav")
    calls = []

    def write_then_die(path, *rest, **kwargs):
        if calls:
            raise KeyboardInterrupt  # the run is killed after its first clip
        calls.append(path)
        return real_write(path, *rest, **kwargs)

    real_write = synth_dataset.write_audio
    monkeypatch.setattr(synth_dataset, "write_audio", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path / "d", seed=3, **args)
    monkeypatch.undo()
    root = tmp_path / "d"
    assert (root / "train_audio").is_dir() and not (root / "taxonomy.csv").exists()  # a partial data set
    marker = json.loads((root / ".birdcall-synth.json").read_text())
    assert marker["format"] == "birdcall-synth" and marker["version"] == 1 and marker["seed"] == 3
    with pytest.raises(ParameterError, match="overwrite"):
        make_dataset(root, seed=3, **args)
    ds = make_dataset(root, seed=3, **args, overwrite=True)
    assert len(list(ds.train_audio_dir.rglob("*.wav"))) == 4 and ds.taxonomy_path.is_file()
    assert json.loads((root / ".birdcall-synth.json").read_text()) == marker


def test_a_marker_that_is_not_ours_does_not_allow_overwrite(tmp_path):
    root = tmp_path / "real"
    files = _real_looking_dataset(root)
    (root / ".birdcall-synth.json").write_text("not json")
    with pytest.raises(ParameterError, match="not written by `birdcall synth`"):
        make_dataset(root, num_species=2, clips_per_species=1, num_background=0, num_soundscapes=0, overwrite=True)
    assert {path: path.read_bytes() for path in files} == files

@pytest.mark.parametrize(
    "bad",
    [
        dict(num_species=0),
        dict(num_species=2.5),
        dict(seed=-1),
        dict(clips_per_species=0),
        dict(num_soundscapes=-1),
        dict(soundscape_duration=2.0),
        dict(snr_db=(10.0, 0.0)),
        dict(snr_db=(1.0,)),
        dict(variation=-0.1),
        dict(secondary_prob=1.5),
        dict(empty_window_fraction=1.0),
        dict(sample_rate=16_000),
        dict(audio_format="mp4"),
        dict(min_clip_duration=6.0),
    ],
)
def test_bad_parameters_raise(tmp_path, bad):
    with pytest.raises(ParameterError):
        make_dataset(tmp_path / "d", **bad)
    assert not (tmp_path / "d").exists()  # nothing is written before the arguments are checked


def test_out_dir_that_is_a_file_raises(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError):
        make_dataset(tmp_path / "file", num_species=1, clips_per_species=1)


def test_make_dataset_takes_the_config_and_repeats_none_of_its_fields():
    parameters = inspect.signature(make_dataset).parameters
    assert parameters["config"].default is None  # None: SynthConfig()'s defaults, the only place they are written
    assert not {f.name for f in dataclasses.fields(SynthConfig)} & set(parameters)


def test_a_config_passed_whole_gives_the_data_set_of_its_fields(tmp_path):
    """``make_dataset(out, SynthConfig(...))`` (the CLI and the demo) writes what the same fields as keywords write."""
    fields = {"num_species": 2, "seed": 3, "clips_per_species": 2, "num_background": 1, "num_soundscapes": 1, "soundscape_duration": 10, "audio_format": "wav"}
    by_config = make_dataset(tmp_path / "a", SynthConfig(**fields))
    by_fields = make_dataset(tmp_path / "b", **fields)
    assert by_config.config == by_fields.config and by_config.config.soundscape_duration == 10.0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    overridden = make_dataset(tmp_path / "c", SynthConfig(**fields), num_background=0)
    assert overridden.config.num_background == 0 and overridden.config.num_species == 2
