import pytest
import torch

from birdcall.augment import sum_mix
from birdcall.errors import ParameterError


def test_sum_mix_adds_partner_and_unions_labels():
    x = torch.stack([torch.full((8,), float(i + 1)) for i in range(4)])
    y = torch.eye(4)
    mixed, targets = sum_mix(x, y, generator=torch.Generator().manual_seed(0), p=1.0, min_gain_db=0.0, max_gain_db=0.0)
    for i in range(4):
        partner = int(round(mixed[i, 0].item() - (i + 1))) - 1  # gain 1: mixed = own + partner value
        assert partner != i and 0 <= partner < 4
        assert targets[i].tolist() == torch.maximum(y[i], y[partner]).tolist()
    assert torch.equal(x, torch.stack([torch.full((8,), float(i + 1)) for i in range(4)]))  # inputs untouched


def test_sum_mix_p_zero_is_identity_and_reproducible():
    x, y = torch.randn(6, 10), torch.eye(6)
    same = sum_mix(x, y, generator=torch.Generator().manual_seed(1), p=0.0)
    assert same[0] is x and same[1] is y
    a = sum_mix(x, y, generator=torch.Generator().manual_seed(5), p=0.5)
    b = sum_mix(x, y, generator=torch.Generator().manual_seed(5), p=0.5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_sum_mix_validates():
    with pytest.raises(ParameterError):
        sum_mix(torch.zeros(2, 2), torch.zeros(2, 2), generator=torch.Generator(), min_gain_db=1, max_gain_db=0)
