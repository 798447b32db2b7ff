"""k-NN precision/recall and density/coverage: the definitions on a small case, and what each says of a collapse."""

import numpy as np
import pytest

from gan_lab.metrics.prdc import prdc


def test_prdc_follows_its_definitions_on_a_small_case():
    rng = np.random.default_rng(0)
    real, fake, k = rng.normal(size=(12, 3)), rng.normal(0.5, 1, size=(9, 3)), 3

    def kth(x, i):
        return np.sort([np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i])[k - 1]

    real_radius = [kth(real, i) for i in range(len(real))]
    fake_radius = [kth(fake, j) for j in range(len(fake))]
    d = np.array([[np.linalg.norm(r - f) for f in fake] for r in real])
    expected = {
        "knn_precision": np.mean([any(d[i, j] <= real_radius[i] for i in range(12)) for j in range(9)]),
        "knn_recall": np.mean([any(d[i, j] <= fake_radius[j] for j in range(9)) for i in range(12)]),
        "density": sum(d[i, j] <= real_radius[i] for i in range(12) for j in range(9)) / (k * 9),
        "coverage": np.mean([d[i].min() <= real_radius[i] for i in range(12)]),
    }
    assert prdc(real, fake, k) == pytest.approx(expected)


def test_a_collapsed_generator_keeps_precision_and_loses_recall_and_coverage():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(500, 8))
    same = prdc(real, rng.normal(size=(500, 8)))
    assert same["knn_precision"] > 0.6 and same["knn_recall"] > 0.6 and 0.7 < same["density"] < 1.3
    collapsed = prdc(real, 0.15 * rng.normal(size=(500, 8)))  # every fake near the reals' centre
    assert collapsed["knn_precision"] > 0.95 and collapsed["knn_recall"] < 0.2 and collapsed["coverage"] < 0.3
    far = prdc(real, rng.normal(size=(500, 8)) + 6.0)
    assert far["knn_precision"] == far["density"] == far["coverage"] == 0.0
    with pytest.raises(ValueError, match="below each set's size"):
        prdc(real[:5], real[:5], k=5)
