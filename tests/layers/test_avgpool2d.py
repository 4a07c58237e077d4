import random

import pytest

from paracnn.layers.avgpool2d import AvgPool2d
from paracnn.testing import check_layer

from . import reference


def _mean(window):
    return sum(window) / len(window)


@pytest.mark.parametrize("config,shape", [
    ({"kernel_size": 2}, (3, 8, 8)),
    ({"kernel_size": 3, "stride": 2}, (2, 7, 7)),
    ({"kernel_size": 2, "stride": 1}, (1, 4, 5)),   # overlapping windows
])
def test_forward_matches_reference_and_gradients_check(config, shape):
    rng = random.Random(4)
    pool = AvgPool2d(**config)
    pool.build(shape)
    x = [rng.uniform(-1, 1) for _ in range(shape[0] * shape[1] * shape[2])]
    k = config["kernel_size"]
    s = config.get("stride", k)
    expected = reference.pool2d(x, shape, (k, k), (s, s), _mean)
    assert max(abs(a - b) for a, b in zip(pool.forward(x), expected)) < 1e-15
    check_layer(AvgPool2d, config, shape)


def test_backward_spreads_evenly_and_sums_overlaps():
    pool = AvgPool2d(kernel_size=2, stride=1)
    pool.build((1, 2, 3))
    pool.forward([0.0] * 6)
    # Two windows share the middle column, which receives both quarters.
    assert pool.backward([4.0, 8.0]) == [1.0, 3.0, 2.0, 1.0, 3.0, 2.0]
