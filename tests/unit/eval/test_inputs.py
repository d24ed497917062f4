"""The three input kinds: a submission, a model on labelled data, a training run folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from birdcall.audio import write_audio
from birdcall.data import read_clip_table
from birdcall.errors import DataError, ParameterError
from birdcall.eval import from_model, from_run, from_submission
from birdcall.eval.embeddings import embed_windows
from birdcall.eval.inputs import read_window
from birdcall.infer import TorchScorer, WindowSpec, load_scorer, predict_files, to_submission
from birdcall.testing.runs import write_fake_run
from birdcall.testing.signals import tone

from .conftest import MODEL_FEATURES, save_test_model

SOLUTION = "row_id,amecro,barswa\nsc_5,1,0\nsc_10,0,1\nsc_15,1,1\nother_5,0,0\n"
SUBMISSION = "row_id,extra,barswa,amecro\nother_5,1,0.4,0.3\nsc_15,1,0.6,0.9\nsc_10,1,0.8,0.1\nsc_5,1,0.2,0.7\nsc_20,1,0,0\n"


def test_from_submission_aligns_rows_and_columns(tmp_path):
    (tmp_path / "solution.csv").write_text(SOLUTION)
    (tmp_path / "submission.csv").write_text(SUBMISSION)
    inputs = from_submission(tmp_path / "solution.csv", tmp_path / "submission.csv")
    assert inputs.kind == "submission" and inputs.labels.codes == ("amecro", "barswa")
    assert inputs.sample_ids == ("sc_5", "sc_10", "sc_15", "other_5")
    np.testing.assert_array_equal(inputs.y_true, [[1, 0], [0, 1], [1, 1], [0, 0]])
    np.testing.assert_allclose(inputs.y_score, [[0.7, 0.2], [0.1, 0.8], [0.9, 0.6], [0.3, 0.4]])
    assert inputs.primary is None and inputs.windows is None and inputs.embeddings is None and inputs.history is None


def test_from_submission_finds_the_soundscape_windows(tmp_path):
    (tmp_path / "solution.csv").write_text(SOLUTION)
    (tmp_path / "submission.csv").write_text(SUBMISSION)
    write_audio(tmp_path / "audio" / "sc.wav", tone(frequency_hz=1000.0, duration=12.0, sample_rate=16_000), 16_000)
    inputs = from_submission(tmp_path / "solution.csv", tmp_path / "submission.csv", audio=tmp_path / "audio")
    assert [(w.path.name, w.start_time, w.duration) for w in inputs.windows[:3]] == [("sc.wav", 0.0, 5.0), ("sc.wav", 5.0, 5.0), ("sc.wav", 10.0, 5.0)]
    assert inputs.windows[3] is None and "1 of 4 rows have no audio file" in inputs.notes[0]
    assert len(read_window(inputs.windows[2], sample_rate=16_000)) == 80_000  # 2 s of audio, zero padded to 5 s


def test_from_submission_missing_species_is_a_data_error(tmp_path):
    (tmp_path / "solution.csv").write_text(SOLUTION)
    (tmp_path / "submission.csv").write_text("row_id,amecro\nsc_5,1\nsc_10,1\nsc_15,1\nother_5,1\n")
    with pytest.raises(DataError, match="submission.csv.*barswa"):
        from_submission(tmp_path / "solution.csv", tmp_path / "submission.csv")


def test_from_model_on_clips_scores_the_first_window(eval_dataset, tmp_path):
    codes = eval_dataset.species_codes
    model = save_test_model(tmp_path / "model" / "best.safetensors", codes)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.6]}).to_csv(tmp_path / "model" / "metrics.csv", index=False)
    inputs = from_model(tmp_path / "model" / "best.safetensors", eval_dataset.root, batch_size=4)
    table = read_clip_table(eval_dataset.root)
    assert inputs.kind == "model" and inputs.sample_ids == tuple(table.frame["filename"])
    windows = np.stack([read_window(w, sample_rate=16_000) for w in inputs.windows])
    assert windows.shape == (9, MODEL_FEATURES.clip_samples)
    np.testing.assert_allclose(inputs.y_score, TorchScorer(model)(windows), atol=1e-5)
    np.testing.assert_array_equal(inputs.y_true, table.labels.encode(table.frame["labels"]))
    assert inputs.primary.tolist() == [codes.index(p) for p in table.frame["primary_label"]]
    assert inputs.embedding_rows.tolist() == list(range(9))
    np.testing.assert_allclose(inputs.embeddings, embed_windows(model, windows)[0], atol=1e-5)
    assert inputs.history["train_loss"].tolist() == [0.7, 0.6] and inputs.features == MODEL_FEATURES


def test_from_model_caps_the_embeddings(eval_dataset, tmp_path):
    save_test_model(tmp_path / "m.safetensors", eval_dataset.species_codes)
    inputs = from_model(tmp_path / "m.safetensors", eval_dataset.root, max_embeddings=3)
    assert len(inputs.embedding_rows) == 3 and inputs.embeddings.shape[0] == 3
    assert from_model(tmp_path / "m.safetensors", eval_dataset.root, embeddings=False).embeddings is None


def test_from_model_on_soundscapes_matches_predict(eval_dataset, tmp_path):
    save_test_model(tmp_path / "m.safetensors", eval_dataset.species_codes)
    inputs = from_model(tmp_path / "m.safetensors", eval_dataset.root, solution=eval_dataset.solution_path)
    solution = pd.read_csv(eval_dataset.solution_path)
    assert inputs.sample_ids == tuple(solution["row_id"]) and inputs.primary is None
    np.testing.assert_array_equal(inputs.y_true, solution[list(eval_dataset.species_codes)].to_numpy())
    scorer = load_scorer(tmp_path / "m.safetensors")
    predicted = to_submission(predict_files(scorer, sorted(eval_dataset.soundscapes_dir.iterdir()), labels=scorer.labels, spec=WindowSpec(16_000, 5.0),
                                            show_progress=False).scores).set_index("row_id")  # fmt: skip
    np.testing.assert_allclose(inputs.y_score, predicted.loc[list(solution["row_id"]), list(eval_dataset.species_codes)].to_numpy(), atol=1e-6)
    assert [(w.start_time, w.duration) for w in inputs.windows] == [(0.0, 5.0), (5.0, 5.0), (10.0, 5.0)]
    assert inputs.embeddings.shape[0] == 3


def test_from_model_without_a_solution_is_a_parameter_error(tmp_path, eval_dataset):
    save_test_model(tmp_path / "m.safetensors", eval_dataset.species_codes)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="solution"):
        from_model(tmp_path / "m.safetensors", tmp_path / "empty")


@pytest.fixture
def run_dir(eval_dataset, tmp_path, rng):
    """A 2-fold run folder as ``birdcall train --folds 2`` leaves it (untrained models, made-up scores)."""
    return write_fake_run(tmp_path / "run", eval_dataset.root, eval_dataset.species_codes, features=MODEL_FEATURES, rng=rng)


def test_from_run_embeds_each_clip_with_its_own_fold_model(run_dir, eval_dataset):
    from birdcall.models import load_model

    inputs = from_run(run_dir, data=eval_dataset.root)
    oof = pd.read_csv(run_dir / "oof.csv")
    codes = list(eval_dataset.species_codes)
    assert inputs.kind == "run" and inputs.sample_ids == tuple(oof["filename"])
    np.testing.assert_allclose(inputs.y_score, oof[codes].to_numpy())
    table = read_clip_table(eval_dataset.root).frame.set_index("filename").loc[oof["filename"]]
    assert inputs.primary.tolist() == [codes.index(p) for p in table["primary_label"]]
    assert inputs.embedding_rows.tolist() == list(range(len(oof)))
    for fold in (0, 1):
        rows = np.flatnonzero(oof["fold"] == fold)
        model = load_model(run_dir / f"fold{fold}" / "best.safetensors")[0]
        windows = np.stack([read_window(inputs.windows[r], sample_rate=16_000) for r in rows])
        np.testing.assert_allclose(inputs.embeddings[rows], embed_windows(model, windows)[0], atol=1e-5)
    assert inputs.history["fold"].tolist() == [0, 0, 1, 1] and inputs.history["train_loss"].tolist() == [0.7, 0.6, 0.7, 0.5]
    assert inputs.features == MODEL_FEATURES


def test_from_run_without_data_takes_labels_from_folds_csv(run_dir, eval_dataset):
    inputs = from_run(run_dir)
    oof = pd.read_csv(run_dir / "oof.csv")
    table = read_clip_table(eval_dataset.root)
    expected = table.labels.encode(table.frame.set_index("filename").loc[oof["filename"], "labels"])
    np.testing.assert_array_equal(inputs.y_true, expected)
    assert inputs.primary is None and inputs.windows is None and inputs.embeddings is None
    assert any("folds.csv" in note for note in inputs.notes)
    (run_dir / "folds.csv").unlink()
    with pytest.raises(ParameterError, match="--data"):
        from_run(run_dir)


def test_from_run_without_oof_is_a_data_error(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(DataError, match="no oof.csv"):
        from_run(tmp_path / "run")
    with pytest.raises(ParameterError, match="not a folder"):
        from_run(tmp_path / "nothing")
