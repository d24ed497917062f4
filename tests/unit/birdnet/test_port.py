"""BirdNET V2.4 in torch (birdcall.birdnet.port) against LiteRT running the same TFLite file. Every test needs
the extra (``make birdnet``; ``make test`` installs it, so CI runs them)."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.birdnet


@pytest.fixture(scope="module")
def litert():
    from birdcall.birdnet import BirdNetModel

    return BirdNetModel(threads=1)


@pytest.fixture(scope="module")
def port():
    from birdcall.birdnet.port import load_birdnet_torch

    return load_birdnet_torch()


def _segments(n=3, seed=0):
    """Noise, a chirp in noise and a quiet tone over a -60 dB noise floor: inputs that exercise the min-max scaling
    and every mel band. (A digitally pure tone is not a fair input: its spectrogram has bins near 0, where BirdNET's
    ``(m * m) ** 0.23`` turns float32 rounding into 1 % of an embedding.)"""
    rng = np.random.default_rng(seed)
    t = np.arange(144_000) / 48_000
    chirp = 0.3 * np.sin(2 * np.pi * (2000 + 1500 * t) * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    x = np.stack([rng.normal(0, 0.1, t.size), chirp + rng.normal(0, 0.01, t.size), 0.01 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 1e-3, t.size)])
    return x[:n].astype(np.float32)


@pytest.mark.integration
def test_the_torch_port_gives_litert_embeddings_and_logits(litert, port):
    x = _segments()
    emb, logits = litert(x)
    with torch.inference_mode():
        temb, tlogits = port(torch.from_numpy(x))
    # float32 noise: LiteRT's XNNPACK against its own reference kernels differs by ~3e-5 on these logits
    np.testing.assert_allclose(temb.numpy(), emb, atol=1e-4 * np.abs(emb).max())
    np.testing.assert_allclose(tlogits.numpy(), logits, atol=1e-3)
    assert (tlogits.numpy().argmax(1) == logits.argmax(1)).all()


def test_the_dft_spectrogram_matches_the_fft_one(port):
    from birdcall.birdnet.port import load_birdnet_torch

    x = torch.from_numpy(_segments())
    with torch.inference_mode():
        a, b = port.spectrogram(x), load_birdnet_torch(dft=True).spectrogram(x)
    assert a.shape == (3, 2, 96, 511)
    torch.testing.assert_close(a, b, atol=5e-3, rtol=1e-3)


def test_the_cut_and_tail_compose_to_the_whole_network_and_the_tail_is_a_trainable_copy(port):
    from birdcall.birdnet.port import BirdNetCut

    cut = BirdNetCut("BLOCK_4-3")
    tail = cut.tail()
    x = torch.from_numpy(_segments())
    with torch.inference_mode():
        emb, _ = port(x)
        c = cut(x)
        assert c.shape == (3, *cut.shape) == (3, 192, 3, 8)
        torch.testing.assert_close(tail(c)[0], emb)
    assert all(p.requires_grad for p in tail.parameters()) and not any(p.requires_grad for p in cut.parameters())
    before = next(iter(cut.head.parameters())).clone(), {k: v.clone() for k, v in port.body.weights.items()}
    with torch.no_grad():
        for p in tail.parameters():
            p.add_(1.0)  # a trained tail must not change the frozen network or the parsed file other models use
    assert all(torch.equal(v, before[1][k]) for k, v in port.body.weights.items())
    assert torch.equal(next(iter(cut.head.parameters())), before[0])
    with pytest.raises(KeyError, match="BLOCK_9-9"):
        port.split("BLOCK_9-9")


def test_numpy_segments_give_flat_cut_features_for_the_feature_pipeline():
    from birdcall.birdnet import BirdNetFeatureConfig, window_features
    from birdcall.birdnet.port import shared_cut

    cut = shared_cut("BLOCK_4-3")
    windows = np.concatenate([_segments(2), _segments(2, seed=1)[:, :96_000]], axis=1)  # two 5-s windows
    config = BirdNetFeatureConfig(window=5.0, step=1.0, pool="stack")
    features = window_features(windows, sample_rate=48_000, model=cut, config=config)
    assert features.shape == (2, 3 * cut.embedding_dim)
    with torch.inference_mode():
        second = cut(torch.from_numpy(windows[:, 48_000:192_000])).flatten(1).numpy()
    np.testing.assert_allclose(features[:, cut.embedding_dim : 2 * cut.embedding_dim], second, atol=1e-4)  # batch-size rounding


def test_a_crafted_or_truncated_tflite_file_is_a_one_line_checkpoint_error(tmp_path):
    from birdcall.birdnet.model import birdnet_files
    from birdcall.birdnet.port import read_tflite
    from birdcall.errors import CheckpointError

    bad = tmp_path / "bad.tflite"
    for content in (b"not a flatbuffer at all", birdnet_files()[0].read_bytes()[:4096]):
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match="bad.tflite") as err:
            read_tflite(bad)
        assert "\n" not in str(err.value)
