import pickle
import random

import pytest

from paracnn.errors import ShapeError
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.testing import check_layer

from . import reference


@pytest.mark.parametrize("config,shape", [
    ({"kernel_size": 2}, (3, 8, 8)),
    ({"kernel_size": 3, "stride": 2}, (2, 7, 7)),
    ({"kernel_size": [2, 3], "stride": [1, 2]}, (1, 5, 7)),
    ({"kernel_size": 2}, (2, 7, 7)),   # odd size: the last row and column are dropped
])
def test_forward_matches_reference_and_gradients_check(config, shape):
    rng = random.Random(3)
    pool = MaxPool2d(**config)
    out_shape = pool.build(shape)
    x = [rng.uniform(-1, 1) for _ in range(shape[0] * shape[1] * shape[2])]
    k = config["kernel_size"]
    kernel = (k, k) if isinstance(k, int) else tuple(k)
    s = config.get("stride", k)
    stride = (s, s) if isinstance(s, int) else tuple(s)
    assert pool.forward(x) == reference.pool2d(x, shape, kernel, stride, max)
    assert len(pool.forward(x)) == out_shape[0] * out_shape[1] * out_shape[2]
    check_layer(MaxPool2d, config, shape)


def test_gradient_goes_to_the_maximum_only():
    pool = MaxPool2d(2)
    pool.build((1, 2, 4))
    pool.forward([1.0, 5.0, 0.0, -1.0,
                  2.0, 3.0, -4.0, -2.0])
    assert pool.backward([10.0, 20.0]) == [0.0, 10.0, 20.0, 0.0,
                                           0.0, 0.0, 0.0, 0.0]


def test_ties_route_to_the_first_maximum():
    pool = MaxPool2d(2)
    pool.build((1, 2, 2))
    pool.forward([7.0, 7.0, 7.0, 7.0])
    assert pool.backward([1.0]) == [1.0, 0.0, 0.0, 0.0]


def test_zero_gradient_windows_are_skipped():
    pool = MaxPool2d(2)
    pool.build((1, 4, 4))
    pool.forward([float(i) for i in range(16)])
    assert pool.backward([0.0, 0.0, 0.0, 3.0]) == [0.0] * 15 + [3.0]


def test_kernel_larger_than_input():
    with pytest.raises(ShapeError, match="kernel_size 3x3 is larger than its input"):
        MaxPool2d(3).build((4, 2, 2))


def test_default_stride_is_kernel_size():
    assert MaxPool2d(kernel_size=3).get_config() == {"kernel_size": [3, 3], "stride": [3, 3]}


def test_pickle_ships_no_window_table_and_the_copy_rebuilds_it():
    pool = MaxPool2d(kernel_size=2)
    pool.build((2, 6, 6), random.Random(0))
    x = [float((7 * i) % 11) for i in range(72)]
    y = pool.forward(x)
    state = pool.__getstate__()
    assert not {"_table", "_get_windows", "_windows", "_maxima"} & set(state)
    clone = pickle.loads(pickle.dumps(pool))
    assert clone.forward(x) == y
    assert clone.backward([1.0] * 18) == pool.backward([1.0] * 18)
