import numpy as np
import pytest
import torch

from birdcall.data.sampling import balanced_sampler, class_balanced_weights
from birdcall.errors import ParameterError


def test_golden_weights():
    y = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]])
    w = class_balanced_weights(y, power=1.0)
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, [0.625, 0.625, 0.625, 0.625, 2.5], rtol=1e-12)
    # power 0.5: class weights 4**-0.5 = 0.5 and 1, mean 0.6
    np.testing.assert_allclose(class_balanced_weights(y), np.array([0.5, 0.5, 0.5, 0.5, 1.0]) / 0.6, rtol=1e-12)


def test_power_zero_is_uniform_and_weights_have_mean_one(rng):
    y = rng.random((50, 6)) < 0.3
    assert np.allclose(class_balanced_weights(y, power=0.0), 1.0)
    for power in (0.5, 1.0, 2.0):
        assert np.isclose(class_balanced_weights(y, power=power).mean(), 1.0)


def test_rare_species_favoured_by_rarest_more_than_by_mean():
    # species 0: 10 clips, species 1: 2 clips, both on clip 0 together with the common species
    y = np.zeros((10, 2), dtype=bool)
    y[:, 0] = True
    y[[0, 1], 1] = True
    rarest = class_balanced_weights(y, power=1.0, reduce="rarest")
    mean = class_balanced_weights(y, power=1.0, reduce="mean")
    assert rarest[0] == rarest[1] > rarest[2] and mean[0] > mean[2]
    assert rarest[0] / rarest[2] == pytest.approx(5.0)  # (1/2) / (1/10)
    assert mean[0] / mean[2] == pytest.approx(3.0)  # mean(1/10, 1/2) / (1/10)


def test_unlabelled_clips_are_a_class_of_their_own():
    y = np.zeros((4, 1))
    y[:3, 0] = 1.0
    w = class_balanced_weights(y, power=1.0)
    assert w[3] / w[0] == pytest.approx(3.0)


def test_soft_targets_count_as_positive():
    hard = np.array([[1, 0], [1, 1], [0, 1]], dtype=float)
    soft = hard * np.array([1.0, 0.5])
    assert np.array_equal(class_balanced_weights(hard), class_balanced_weights(soft))


@pytest.mark.parametrize("kwargs", [{"power": -0.1}, {"power": float("nan")}, {"power": True}, {"reduce": "max"}])
def test_bad_parameters(kwargs):
    with pytest.raises(ParameterError):
        class_balanced_weights(np.eye(3), **kwargs)


@pytest.mark.parametrize("y", [np.ones(3), np.ones((0, 2)), -np.eye(3), np.full((2, 2), np.inf)])
def test_bad_label_matrix(y):
    with pytest.raises(ParameterError):
        class_balanced_weights(y)


def _sampler(y, seed, **kwargs):
    return balanced_sampler(y, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_sampler_balances_classes_and_is_seeded():
    y = np.zeros((100, 2), dtype=bool)
    y[:90, 0] = True
    y[90:, 1] = True
    sampler = _sampler(y, 3, power=1.0, num_samples=4000)
    assert isinstance(sampler, torch.utils.data.WeightedRandomSampler) and len(sampler) == 4000
    draws = np.array(list(sampler))
    rare_share = np.isin(draws, np.arange(90, 100)).mean()
    assert 0.45 < rare_share < 0.55  # full inverse frequency: each species about half the draws (10 % uniform)
    assert np.array_equal(draws, np.array(list(_sampler(y, 3, power=1.0, num_samples=4000))))
    assert not np.array_equal(draws, np.array(list(_sampler(y, 4, power=1.0, num_samples=4000))))
    assert len(_sampler(y, 0)) == 100
    with pytest.raises(ParameterError):
        _sampler(y, 0, num_samples=0)
    with pytest.raises(ParameterError, match="torch.Generator"):
        balanced_sampler(y, generator=3)
