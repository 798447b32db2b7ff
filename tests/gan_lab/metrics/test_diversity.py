import warnings

import numpy as np
import pytest

from gan_lab.metrics.diversity import (
    ModeCollapseWarning,
    check_collapse,
    image_diversity,
    mean_pairwise_distance,
)


def test_mean_pairwise_distance_matches_a_direct_computation():
    features = np.random.default_rng(0).normal(size=(300, 7))
    direct = [np.linalg.norm(features[i] - features[j]) for i in range(300) for j in range(i + 1, 300)]
    assert mean_pairwise_distance(features) == pytest.approx(np.mean(direct), rel=1e-9)


def test_identical_images_have_no_diversity_and_varied_ones_some():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.random((1, 32, 32, 3), dtype=np.float32), 16, axis=0)
    varied = rng.random((16, 32, 32, 3), dtype=np.float32)
    assert image_diversity(same) == pytest.approx(0.0, abs=1e-3)
    assert image_diversity(varied) > 0.1


def test_collapse_warns_below_a_fraction_of_the_real_images_diversity():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Falling from an untrained generator's noise towards the real figure is not collapse.
        assert check_collapse([14.1, 8.3, 6.8], reference=9.0) is None
        assert check_collapse([6.8], reference=float("nan")) is None
        # Never varied yet (an untrained generator's grey squares): not started, not collapsed.
        assert check_collapse([0.14, 0.17, 0.2], reference=10.4) is None
    with pytest.warns(ModeCollapseWarning, match="epoch 3 is 1.2, below 50% of the real training images' 9"):
        message = check_collapse([14.1, 8.3, 1.2], reference=9.0)
    assert message.startswith("Possible mode collapse")
