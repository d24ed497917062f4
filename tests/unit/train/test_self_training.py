"""Soft labels end to end on synthetic data: pseudo-labels in the loader, online distillation, ``init_from`` in a
run, the student's lineage, and a tiny two-round self-training loop (teacher -> pseudo-label -> student ->
pseudo-label -> student)."""

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from birdcall.errors import ParameterError
from birdcall.infer.pseudo_labels import pseudo_label, read_pseudo_labels
from birdcall.models import load_model
from birdcall.models.io import read_model_info
from birdcall.train import TrainConfig, fit
from birdcall.train.loop import _datasets, _pseudo_dataset, _train_loader, encode_targets
from birdcall.train.soft_labels import transform_soft_labels


@pytest.fixture(scope="module")
def unlabeled(tiny_data, tmp_path_factory):
    """Four 5-s recordings nobody labelled (copies of synthetic clips, in a folder of their own)."""
    folder = tmp_path_factory.mktemp("unlabeled")
    for i, path in enumerate(sorted((tiny_data / "train_audio").rglob("*.wav"))[::5][:4]):
        shutil.copy(path, folder / f"rec{i}.wav")
    return folder


@pytest.fixture(scope="module")
def teacher(tiny_data, tmp_path_factory):
    from birdcall.data import read_clip_table
    from birdcall.features import FeatureConfig

    run = tmp_path_factory.mktemp("teacher")
    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)  # conftest's TINY_FEATURES
    config = TrainConfig(model="test_cnn", features=features, epochs=2, batch_size=4, optim={"lr": 3e-3}, threads=1, data={"val_fraction": 0.3})
    fit(read_clip_table(tiny_data), config, run, show_progress=False)
    return run / "best.safetensors"


@pytest.fixture(scope="module")
def labels_file(teacher, unlabeled, tmp_path_factory):
    out = tmp_path_factory.mktemp("pl") / "labels.parquet"
    pseudo_label([teacher], [unlabeled], out, batch_size=8, threads=1)
    return out


def _student_config(tiny_config, labels_file, unlabeled, **pseudo):
    return replace(tiny_config, epochs=2, pseudo=replace(tiny_config.pseudo, labels=str(labels_file), audio=str(unlabeled), **pseudo))


def test_loader_batches_hold_labelled_items_then_soft_labelled_windows(tiny_table, tiny_config, labels_file, unlabeled):
    config = _student_config(tiny_config, labels_file, unlabeled, ratio=0.5, power=2.0)
    config = replace(config, augment={"waveform": []})
    targets = encode_targets(tiny_table, config.data.secondary_weight)
    idx = np.arange(len(tiny_table.frame))
    train_ds, _ = _datasets(tiny_table, config, targets, idx, idx[:0])
    pseudo_ds, source = _pseudo_dataset(tiny_table, config)
    table = read_pseudo_labels(labels_file, audio_root=unlabeled)
    assert len(pseudo_ds) == len(table) == 4 * 5 and source.windows == 20  # 4 recordings x 5 windows of 1 s
    loader = _train_loader(train_ds, config, torch.Generator().manual_seed(0), 0, 1, pseudo=pseudo_ds)
    expected = transform_soft_labels(table.probs, power=2.0)
    seen = 0
    for waveforms, batch_targets in loader:
        assert waveforms.shape == (4, config.features.clip_samples) and batch_targets.shape == (4, 3)
        hard, soft = batch_targets[:2].numpy(), batch_targets[2:].numpy()
        assert set(np.unique(hard)) <= {0.0, 1.0}  # labelled items: hard labels
        for row in soft:  # pseudo-labelled windows: the teacher's probabilities, squared
            assert np.abs(expected - row).max(axis=1).min() < 1e-6
        seen += 1
    assert seen == len(loader) == (len(train_ds) // 2)


def test_a_student_trains_on_pseudo_labels_and_an_online_teacher_and_names_them(tiny_table, tiny_config, teacher, labels_file, unlabeled, tmp_path):
    config = _student_config(tiny_config, labels_file, unlabeled, ratio=0.5, weight=0.5)
    config = replace(config, distill=replace(config.distill, teacher=str(teacher), weight=0.5, temperature=2.0, loss="kl"))
    result = fit(tiny_table, config, tmp_path / "student", show_progress=False)
    history = pd.read_csv(tmp_path / "student" / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2] and np.isfinite(history["train_loss"]).all()
    extra = read_model_info(result.best_path)["extra"]
    teachers = extra["teachers"]
    assert [t.get("use") for t in teachers] == [None, "online distillation"]
    digests = {t["digest"] for t in teachers}
    assert len(digests) == 1 and len(next(iter(digests))) == 64  # the same teacher file, by its sha256
    assert extra["pseudo_labels"] == {"file": "labels.parquet", "windows": 20, "dropped": 0}
    assert "note" not in extra  # no BirdNET anywhere in this lineage


def test_soft_labels_change_what_the_student_learns(tiny_table, tiny_config, labels_file, unlabeled, tmp_path):
    plain = fit(tiny_table, replace(tiny_config, epochs=1), tmp_path / "plain", show_progress=False)
    soft = fit(tiny_table, _student_config(replace(tiny_config, epochs=1), labels_file, unlabeled), tmp_path / "soft", show_progress=False)
    a, _, _ = load_model(plain.best_path)
    b, _, _ = load_model(soft.best_path)
    diff = max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters()))
    assert diff > 1e-4


def test_min_confidence_drops_windows_and_a_changed_labels_file_refuses_resume(tiny_table, tiny_config, labels_file, unlabeled, tmp_path):
    table = read_pseudo_labels(labels_file, audio_root=unlabeled)
    cut = float(np.sort(table.probs.max(axis=1))[10])
    config = _student_config(tiny_config, labels_file, unlabeled, min_confidence=cut)
    _, source = _pseudo_dataset(tiny_table, config)
    assert source.windows == int((table.probs.max(axis=1) >= cut).sum()) and source.dropped == 20 - source.windows > 0
    with pytest.raises(ParameterError, match="no window has a teacher probability"):
        _pseudo_dataset(tiny_table, _student_config(tiny_config, labels_file, unlabeled, min_confidence=0.999999))
    copy = tmp_path / "copy.parquet"
    shutil.copy(labels_file, copy)
    config = replace(_student_config(tiny_config, copy, unlabeled), epochs=1)
    fit(tiny_table, config, tmp_path / "run", show_progress=False)
    copy.write_bytes(copy.read_bytes()[:-8] + b"\0" * 8)  # another file under the same name
    with pytest.raises(ParameterError, match="pseudo_labels"):
        fit(tiny_table, config, tmp_path / "run", resume=True, show_progress=False)


def test_init_from_starts_the_run_from_the_checkpoint(tiny_table, tiny_config, teacher, tmp_path):
    config = replace(tiny_config, epochs=1, optim=replace(tiny_config.optim, lr=1e-9, warmup_epochs=0.0), init_from=str(teacher),
                     data=replace(tiny_config.data, mix_p=0.0), augment={"waveform": []})
    result = fit(tiny_table, config, tmp_path / "init", show_progress=False)
    start, _, _ = load_model(teacher)
    trained, _, _ = load_model(result.best_path)
    fresh = fit(tiny_table, replace(config, init_from=None), tmp_path / "fresh", show_progress=False)
    scratch, _, _ = load_model(fresh.best_path)
    for (name, a), b, c in zip(trained.named_parameters(), start.parameters(), scratch.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)  # lr ~0: the weights are the checkpoint's
    assert max((b - c).abs().max().item() for b, c in zip(start.parameters(), scratch.parameters())) > 1e-3
    assert read_model_info(result.best_path)["extra"]["init_from"] == {"file": "best.safetensors", "kind": "birdcall", "head": "loaded"}


def test_two_rounds_of_self_training(tiny_table, tiny_config, teacher, unlabeled, tmp_path):
    current = teacher
    for r in (1, 2):
        labels = tmp_path / f"round{r}.parquet"
        summary = pseudo_label([current], [unlabeled], labels, batch_size=8, threads=1)
        assert summary.windows == 20 and summary.skipped == 0
        result = fit(tiny_table, _student_config(tiny_config, labels, unlabeled), tmp_path / f"student{r}", show_progress=False)
        meta = read_pseudo_labels(labels, audio_root=unlabeled).metadata
        assert meta["teachers"][0]["path"] == str(current)
        assert read_model_info(result.best_path)["extra"]["teachers"][0]["digest"] == meta["teachers"][0]["digest"]
        current = result.best_path
    assert current == tmp_path / "student2" / "best.safetensors"


def test_recording_tails_shorter_than_min_seconds_are_left_out(tiny_table, tiny_config, teacher, tmp_path):
    from birdcall.audio import load, write_audio

    folder = tmp_path / "tails"
    folder.mkdir()
    clip = sorted((tiny_table.root / "train_audio").rglob("*.wav"))[0]
    y = load(clip, sample_rate=32000)
    write_audio(folder / "rec.wav", y[: int(2.3 * 32000)], 32000)  # windows at 0, 1 and 2 s; the last holds 0.3 s
    labels = tmp_path / "tails.parquet"
    pseudo_label([teacher], [folder], labels, threads=1)
    assert len(read_pseudo_labels(labels, audio_root=folder)) == 3
    dataset, source = _pseudo_dataset(tiny_table, _student_config(tiny_config, labels, folder, min_seconds=0.5))
    assert (source.windows, source.dropped, source.short) == (2, 1, 1) and list(dataset.starts) == [0.0, 1.0]
    _, source = _pseudo_dataset(tiny_table, _student_config(tiny_config, labels, folder, min_seconds=0.0))
    assert source.windows == 3


@pytest.mark.parametrize("augment", [False, True])
def test_pseudo_augment_false_gives_the_student_the_teachers_window(tiny_table, tiny_config, labels_file, unlabeled, augment):
    """With ``pseudo.augment: false`` every pseudo-labelled row reaches the model as the window the teacher scored
    (no noise, no sum-mix, no spectrogram masks); with ``true`` some rows do not. Labelled rows stay augmented."""
    from birdcall.models import create_model
    from birdcall.train.losses import build_loss
    from birdcall.train.loop import train_one_epoch

    config = _student_config(tiny_config, labels_file, unlabeled, ratio=0.5, augment=augment)
    config = replace(config, data=replace(config.data, mix_p=1.0),
                     augment={"waveform": [{"name": "background_noise", "p": 1.0, "snr_db": [0.0, 3.0]}],
                              "spectrogram": [{"name": "time_mask", "p": 1.0}]})  # fmt: skip
    targets = encode_targets(tiny_table, config.data.secondary_weight)
    idx = np.arange(len(tiny_table.frame))
    train_ds, _ = _datasets(tiny_table, config, targets, idx, idx[:0])
    pseudo_ds, _ = _pseudo_dataset(tiny_table, config)
    loader = _train_loader(train_ds, config, torch.Generator().manual_seed(0), 0, 1, pseudo=pseudo_ds)
    model = create_model("test_cnn", num_classes=3, features=config.features)
    with torch.no_grad():
        clean = model.frontend(torch.stack([torch.from_numpy(pseudo_ds.window(i)) for i in range(len(pseudo_ds))]))
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.frontend = model, model.frontend

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.inner(x)

    spy = Spy()
    optimizer = torch.optim.SGD(spy.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    criterion = build_loss("bce")
    train_one_epoch(spy, loader, optimizer, scheduler, criterion, config=config, generator=torch.Generator().manual_seed(1), epoch=1,
                    device=torch.device("cpu"), pseudo_per_batch=loader.batch_sampler.per_batch)  # fmt: skip
    rows = torch.cat([x[-loader.batch_sampler.per_batch :] for x in seen])  # features: the spectrogram stage ran in the loop
    labelled = torch.cat([x[: -loader.batch_sampler.per_batch] for x in seen])
    nearest = torch.cdist(rows.flatten(1), clean.flatten(1)).min(dim=1).values
    if augment:
        assert (nearest > 1e-3).any()
    else:
        assert (nearest < 1e-4).all()  # every row is one of the teacher's windows, untouched
    assert not any((torch.cdist(labelled.flatten(1), clean.flatten(1)).min(dim=1).values < 1e-4).tolist())  # labelled rows stay augmented


@pytest.fixture
def small_birdnet():
    """BirdNET replaced by a small deterministic stand-in with 0.5-s segments (the tiny student's windows are 1 s)."""
    from birdcall.birdnet import using_model
    from birdcall.testing.birdnet import StandInBirdNet

    model = StandInBirdNet(embedding_dim=16, num_classes=4, sample_rate=8000, segment_samples=4000)
    with using_model(model):
        yield model


def test_embedding_targets_are_birdnets_standardised_window_features(tiny_table, tiny_config, labels_file, unlabeled, small_birdnet):
    from birdcall.birdnet import BirdNetFeatureConfig, window_features
    from birdcall.train.soft_labels import embedding_targets

    pseudo_ds, _ = _pseudo_dataset(tiny_table, _student_config(tiny_config, labels_file, unlabeled, augment=False))
    targets = embedding_targets(pseudo_ds, batch_size=7)  # batches of 7 over 20 windows: the last one short
    windows = np.stack([pseudo_ds.window(i) for i in range(len(pseudo_ds))])
    raw = window_features(windows, sample_rate=tiny_config.features.sample_rate, model=small_birdnet,
                          config=BirdNetFeatureConfig(window=1.0, segment=0.5, step=1.0, pool="meanmax")).astype(np.float64)  # fmt: skip
    assert targets.shape == (20, 32) and targets.dtype == np.float32
    varying = raw.std(axis=0) > 1e-8
    np.testing.assert_allclose(targets[:, varying], ((raw[:, varying] - raw[:, varying].mean(axis=0)) / raw[:, varying].std(axis=0)), atol=1e-4)
    np.testing.assert_array_equal(targets[:, ~varying], 0.0)  # BirdNET's ReLU leaves some dimensions at 0 everywhere
    assert varying.sum() > 8
    with pytest.raises(ParameterError, match="segments are 3 s, longer than the student's 1-s windows"):
        from birdcall.testing.birdnet import StandInBirdNet

        embedding_targets(pseudo_ds, model=StandInBirdNet(sample_rate=8000, segment_samples=24000))


def test_embedding_distiller_gives_the_models_logits_and_the_hand_computed_term():
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model
    from birdcall.train.soft_labels import EmbeddingDistiller

    features = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
    model = create_model("test_cnn", num_classes=3, features=features).eval()
    distiller = EmbeddingDistiller(model, 5, weight=0.5)
    x = torch.randn(4, features.clip_samples)
    with torch.no_grad():
        logits, pooled = distiller(model, x)
        torch.testing.assert_close(logits, model(x))
        assert pooled.shape == (4, model.num_features)
        targets = torch.randn(3, 5)
        expected = 0.5 * (3 / 4) * ((pooled[1:] @ distiller.proj.weight.T + distiller.proj.bias - targets) ** 2).mean()
        torch.testing.assert_close(distiller.loss(pooled, targets, rows=4), expected)
    with pytest.raises(ParameterError, match="cnn-family student"):
        EmbeddingDistiller(torch.nn.Linear(3, 3), 5, weight=1.0)


def test_a_student_with_embedding_distillation_trains_resumes_and_names_birdnet(tiny_table, tiny_config, labels_file, unlabeled, small_birdnet, tmp_path,
                                                                               kill_training_at):
    base = replace(_student_config(tiny_config, labels_file, unlabeled, augment=False, ratio=0.5), augment={"waveform": []})
    config = replace(base, distill=replace(base.distill, embedding_weight=1.0))
    targets = encode_targets(tiny_table, config.data.secondary_weight)
    idx = np.arange(len(tiny_table.frame))
    train_ds, _ = _datasets(tiny_table, config, targets, idx, idx[:0])
    pseudo_ds, _ = _pseudo_dataset(tiny_table, config)
    from birdcall.train.soft_labels import embedding_targets

    pseudo_ds.embeddings = embedding_targets(pseudo_ds)
    loader = _train_loader(train_ds, config, torch.Generator().manual_seed(0), 0, 1, pseudo=pseudo_ds)
    for waveforms, batch_targets, embeddings in loader:  # the embedding targets of the pseudo-labelled rows, in order
        assert embeddings.shape == (2, 32)
        for w, e in zip(waveforms[2:], embeddings):
            i = next(i for i in range(len(pseudo_ds)) if np.array_equal(pseudo_ds.window(i), w.numpy()))
            np.testing.assert_array_equal(e.numpy(), pseudo_ds.embeddings[i])

    result = fit(tiny_table, config, tmp_path / "emb", show_progress=False)
    teachers = read_model_info(result.best_path)["extra"]["teachers"]
    assert teachers[-1]["use"] == "embedding distillation" and teachers[-1]["license"] == "CC BY-NC-SA 4.0"
    assert "non-commercial" in read_model_info(result.best_path)["extra"]["note"]
    student, _, _ = load_model(result.best_path)
    assert not any("proj" in name for name, _ in student.named_parameters())  # the map is not part of the model
    plain = fit(tiny_table, base, tmp_path / "plain", show_progress=False)
    a, _, _ = load_model(plain.best_path)
    assert max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), student.parameters())) > 1e-4  # the term trains the student

    kill_training_at(2)  # as if the job were killed during epoch 2
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_table, config, tmp_path / "cut", show_progress=False)
    kill_training_at(None)
    fit(tiny_table, config, tmp_path / "cut", resume=True, show_progress=False)  # the linear map's state is restored too
    a, b = load_file(tmp_path / "emb" / "last.safetensors"), load_file(tmp_path / "cut" / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)

    from birdcall.errors import CheckpointError
    from birdcall.train.checkpoint import load_train_state, save_train_state

    state_path = tmp_path / "cut" / "train_state.pt"
    state = load_train_state(state_path)
    assert set(state["distiller"]) == {"proj.weight", "proj.bias"}
    state.pop("format")
    save_train_state(state_path, **{**state, "distiller": None})  # a state without the map's weights
    with pytest.raises(CheckpointError, match="train_state.pt.*no state of the embedding-distillation map"):
        fit(tiny_table, config, tmp_path / "cut", resume=True, show_progress=False)


def test_embedding_distillation_config_refusals(labels_file, unlabeled):
    with pytest.raises(ParameterError, match="embedding_weight > 0 needs pseudo.labels with pseudo.augment: false"):
        TrainConfig(distill={"embedding_weight": 1.0})
    with pytest.raises(ParameterError, match="embedding_weight > 0 needs pseudo.labels"):
        TrainConfig(pseudo={"labels": str(labels_file), "audio": str(unlabeled)}, distill={"embedding_weight": 1.0})
    with pytest.raises(ParameterError, match="embedding_weight"):
        TrainConfig(distill={"embedding_weight": -1.0})
    TrainConfig(pseudo={"labels": str(labels_file), "audio": str(unlabeled), "augment": False}, distill={"embedding_weight": 0.5})
