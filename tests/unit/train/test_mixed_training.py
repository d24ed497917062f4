"""Training with soundscape-style windows (TrainConfig.mix): the loader really mixes, labels come from the
clips' calls, and a run with mixing trains, saves and differs from one without."""

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from birdcall.data.mixed_windows import MixedWindowDataset
from birdcall.data.soundscape import WindowMixConfig, clip_calls, read_events
from birdcall.train import fit
from birdcall.train.loop import _datasets, encode_targets


def test_clip_calls_take_events_and_span_the_clip_for_unannotated_labels(tiny_table):
    calls = clip_calls(tiny_table)
    events = read_events(tiny_table.root)
    assert len(calls) == len(tiny_table.frame)
    for row, clip in zip(tiny_table.frame.itertuples(), calls):
        annotated = events.get(f"train_audio/{row.filename}", [])
        assert clip[: len(annotated)] == annotated
        assert {c for *_, c in clip} >= set(row.labels)


def test_mix_p_switches_the_training_set_to_mixed_windows(tiny_table, tiny_config):
    targets = encode_targets(tiny_table, tiny_config.data.secondary_weight)
    idx = np.arange(len(tiny_table.frame))
    plain, _ = _datasets(tiny_table, tiny_config, targets, idx, idx[:0])
    assert not isinstance(plain, MixedWindowDataset)
    config = replace(tiny_config, mix=WindowMixConfig(p=1.0, extra_clips=1))
    mixed, _ = _datasets(tiny_table, config, targets, idx, idx[:0])
    assert isinstance(mixed, MixedWindowDataset) and len(mixed) == len(plain)
    n = len(tiny_table.frame)
    kinds = [mixed.item(i)[2] for i in range(len(mixed))]
    assert all(kinds[:n]) and not any(kinds[n:])  # clips are mixed, background negatives stay plain
    x, y = mixed[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (config.features.clip_samples,) and tuple(y.shape) == (targets.shape[1],)


def test_a_run_with_mixed_windows_trains_and_saves_a_model(tiny_table, tiny_config, tmp_path):
    config = replace(tiny_config, epochs=2, mix=WindowMixConfig(p=0.5))
    result = fit(tiny_table, config, tmp_path / "mixed", show_progress=False)
    history = pd.read_csv(tmp_path / "mixed" / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2] and np.isfinite(history["train_loss"]).all()
    assert result.best_path.is_file()
    assert "mix:" in (tmp_path / "mixed" / "config.yaml").read_text()


def test_without_background_recordings_mixed_windows_lie_over_silence(tiny_table, tiny_config):
    targets = encode_targets(tiny_table, tiny_config.data.secondary_weight)
    calls = clip_calls(tiny_table)
    features = tiny_config.features
    from birdcall.data.mixed_windows import MemoryReader

    dataset = MixedWindowDataset(list(tiny_table.frame["path"]), targets, calls, species_codes=tiny_table.labels.codes, backgrounds=[],
                                 features=features, config=WindowMixConfig(p=1.0, extra_clips=0), read=MemoryReader(features.sample_rate))  # fmt: skip
    y, target, mixed = dataset.item(0)
    assert mixed and y.shape == (features.clip_samples,) and np.isfinite(y).all()
    assert np.abs(y).max() > 0
