"""The error gallery: which errors, and the picture and sound of each."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from birdcall.errors import ParameterError
from birdcall.eval import WindowRef, build_gallery, select_errors
from birdcall.eval.gallery import wav_bytes


def test_select_errors_hand_made():
    y_true = [[1, 0], [0, 1], [0, 0]]
    y_score = [[0.2, 0.9], [0.8, 0.1], [0.8, 0.3]]
    fp, fn = select_errors(y_true, y_score, count=2)
    assert fp == [(0, 1), (1, 0)]  # 0.9, then the first of the two 0.8s in row-major order
    assert fn == [(1, 1), (0, 0)]  # 0.1, then 0.2
    assert select_errors(y_true, y_score, count=0) == ([], [])
    with pytest.raises(ParameterError, match="count"):
        select_errors(y_true, y_score, count=-1)


def test_wav_bytes_is_16_bit_pcm():
    y = np.array([0.0, 0.5, -0.5, 2.0], dtype=np.float32)
    data, rate = sf.read(io.BytesIO(wav_bytes(y, sample_rate=8000)), dtype="float32")
    info = sf.info(io.BytesIO(wav_bytes(y, sample_rate=8000)))
    assert rate == 8000 and info.subtype == "PCM_16" and info.format == "WAV"
    np.testing.assert_allclose(data, [0.0, 0.5, -0.5, 1.0], atol=1 / 32768)


def test_gallery_items_carry_the_window_picture_and_sound(full_inputs):
    fp, fn = build_gallery(full_inputs, count=3)
    expected_fp, expected_fn = select_errors(full_inputs.y_true, full_inputs.y_score, count=3)
    assert [(item.row, full_inputs.labels.codes.index(item.species)) for item in fp] == expected_fp
    assert [(item.row, full_inputs.labels.codes.index(item.species)) for item in fn] == expected_fn
    for item in fp + fn:
        assert item.score == full_inputs.y_score[item.row, full_inputs.labels.codes.index(item.species)]
        assert set(item.true_labels) == {full_inputs.labels.codes[j] for j in np.flatnonzero(full_inputs.y_true[item.row])}
        assert item.image_png[:8] == b"\x89PNG\r\n\x1a\n" and item.problem == ""
        audio, rate = sf.read(io.BytesIO(item.wav), dtype="float32")
        assert rate == 16_000 and len(audio) == 16_000
    assert {item.kind for item in fp} == {"false positive"} and {item.kind for item in fn} == {"false negative"}


def test_gallery_survives_missing_audio(full_inputs, tmp_path):
    windows = list(full_inputs.windows)
    windows = [WindowRef(tmp_path / "gone.wav", 0.0, 1.0)] * len(windows)
    fp, fn = build_gallery(replace(full_inputs, windows=tuple(windows)), count=2)
    assert all(item.image_png is None and item.wav is None and "audio unavailable" in item.problem for item in fp + fn)
    fp, _ = build_gallery(replace(full_inputs, windows=None), count=2)
    assert all(item.image_png is None and item.window is None for item in fp)


def test_gallery_pictures_of_files_whose_names_look_like_mathtext(full_inputs, tmp_path):
    windows = []
    for i, window in enumerate(full_inputs.windows):
        odd = tmp_path / f"clip {i} $\\foo$ <b>.wav"  # the picture's title is the file name: "$\foo$" is not valid mathtext
        odd.write_bytes(window.path.read_bytes())
        windows.append(replace(window, path=odd))
    fp, fn = build_gallery(replace(full_inputs, windows=tuple(windows)), count=2)
    assert all(item.image_png[:8] == b"\x89PNG\r\n\x1a\n" and item.problem == "" for item in fp + fn)


def test_a_picture_that_cannot_be_drawn_leaves_the_item_with_a_problem(full_inputs, monkeypatch):
    from birdcall.eval import plots

    def broken(*args, **kwargs):
        raise ValueError("cannot draw")

    monkeypatch.setattr(plots, "spectrogram_figure", broken)
    fp, fn = build_gallery(full_inputs, count=1)
    assert all(item.image_png is None and item.problem == "spectrogram could not be drawn: cannot draw" for item in fp + fn)
    assert all(item.wav[:4] == b"RIFF" for item in fp + fn)  # the sound is still there
