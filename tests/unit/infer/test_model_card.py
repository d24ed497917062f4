"""`model_card`: what a model file or run folder says about itself (name, family, licence), read from headers."""

import pytest

from birdcall.birdnet import BIRDNET_LICENSE, NON_COMMERCIAL_NOTE
from birdcall.data.labels import LabelSet
from birdcall.errors import ParameterError
from birdcall.features import FeatureConfig
from birdcall.infer.models import model_card, model_licences

SMALL = FeatureConfig(n_mels=32, n_fft=512, hop_length=256, fmax=8000.0, clip_duration=1.0)
LABELS = LabelSet(("aaa", "bbb"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    from birdcall.models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("test_cnn", num_classes=2, features=SMALL).eval()


def test_a_checkpoint_card_names_its_family_and_its_own_licence(tiny, tmp_path):
    from birdcall.models import save_model

    path = save_model(tiny, tmp_path / "best.safetensors", labels=LABELS, extra={"license": "CC BY 4.0"})
    card = model_card(path)
    assert (card.name, card.files, card.arch, card.license, card.note) == ("best.safetensors", (str(path),), "cnn", "CC BY 4.0", None)
    assert card.backbone


def test_a_run_folder_lists_its_members_and_birdnet_wins_over_other_licences(tiny, tmp_path):
    from birdcall.models import save_model

    for fold in range(2):
        save_model(tiny, tmp_path / "run" / f"fold{fold}" / "best.safetensors", labels=LABELS,
                   extra={"teachers": [{"license": BIRDNET_LICENSE}]} if fold else {})  # fmt: skip
    card = model_card(tmp_path / "run")
    assert card.name == "run" and len(card.files) == 2
    assert (card.license, card.note) == (BIRDNET_LICENSE, NON_COMMERCIAL_NOTE)


def test_an_export_has_no_licence_unless_its_family_is_built_on_birdnet(tiny, tmp_path):
    from birdcall.export import export_onnx

    path = export_onnx(tiny, tmp_path / "m.onnx", labels=LABELS)
    card = model_card(path)
    assert (card.name, card.arch, card.license, card.note) == ("m.onnx", "cnn", None, None)
    assert model_licences({"arch": "birdnet_finetune"}, {}) == [BIRDNET_LICENSE]


def test_a_missing_model_is_one_line(tmp_path):
    with pytest.raises(ParameterError, match="nowhere.onnx: model not found"):
        model_card(tmp_path / "nowhere.onnx")


@pytest.mark.integration  # a subprocess
def test_a_checkpoint_card_is_read_without_torch_and_a_bad_header_is_one_line(tiny, tmp_path):
    import subprocess
    import sys

    from birdcall.errors import CheckpointError
    from birdcall.models import save_model

    path = save_model(tiny, tmp_path / "best.safetensors", labels=LABELS)
    code = f"import sys; from birdcall.infer.models import model_card; print(model_card({str(path)!r}).arch, 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["cnn", "False"]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a birdcall model file or a malformed header"):
        model_card(bad)
