import pickle
import random

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn.layers.dense import Dense
from paracnn.testing import check_layer


def _dense(units, n_in, weight, bias=None):
    d = Dense(units, bias=bias is not None)
    d.build((n_in,), random.Random(0))
    d.params["weight"][:] = weight
    if bias is not None:
        d.params["bias"][:] = bias
    return d


def test_forward_is_wx_plus_b():
    d = _dense(2, 3, [1.0, 2.0, 3.0, -1.0, 0.0, 1.0], [0.5, -0.5])
    assert d.forward([1.0, 1.0, 2.0]) == [9.5, 0.5]


def test_backward_values_and_deferred_weight_gradient():
    d = _dense(2, 3, [1.0, 2.0, 3.0, -1.0, 0.0, 1.0], [0.0, 0.0])
    d.forward([1.0, 2.0, 3.0])
    assert d.backward([1.0, 0.0]) == [1.0, 2.0, 3.0]
    d.forward([0.0, 1.0, 0.0])
    assert d.backward([2.0, 1.0]) == [1.0, 4.0, 7.0]
    d.sync_grads()
    # dW = Σ dy ⊗ x over both samples; db = Σ dy.
    assert d.grads["weight"] == [1.0, 4.0, 3.0, 0.0, 1.0, 0.0]
    assert d.grads["bias"] == [3.0, 1.0]


def test_zero_grad_discards_deferred_work():
    d = _dense(1, 2, [1.0, 1.0], [0.0])
    d.forward([1.0, 1.0])
    d.backward([5.0])
    d.zero_grad()
    d.sync_grads()
    assert d.grads["weight"] == [0.0, 0.0]


def test_a_pickled_copy_carries_no_deferred_work_and_defers_afresh():
    d = _dense(1, 2, [1.0, 1.0], [0.0])
    d.forward([1.0, 1.0])
    d.backward([5.0])  # deferred: the weight gradient waits for sync_grads
    clone = pickle.loads(pickle.dumps(d))
    clone.sync_grads()
    assert clone.grads["weight"] == [0.0, 0.0]  # the original's pending sample stayed behind
    clone.forward([2.0, 3.0])
    clone.backward([1.0])
    clone.sync_grads()
    assert clone.grads["weight"] == [2.0, 3.0]


def test_backward_syncs_by_itself_after_max_pending():
    d = _dense(1, 1, [1.0], [0.0])
    d.max_pending = 3
    for _ in range(3):
        d.forward([2.0])
        d.backward([1.0])
    assert d.grads["weight"] == [6.0]   # synced without an explicit call


@pytest.mark.parametrize("config,shape", [({"units": 5}, (7,)), ({"units": 3, "bias": False}, (6,)),
                                          ({"units": 4, "init": "xavier_normal"}, (9,))])
def test_gradients(config, shape):
    check_layer(Dense, config, shape)


def test_image_input_needs_flatten():
    with pytest.raises(ShapeError, match=r"expects a flat input but gets \(16, 4, 4\); add a flatten"):
        Dense(10).build((16, 4, 4), random.Random(0))


def test_bad_units():
    with pytest.raises(ConfigError) as e:
        Dense(units=0)
    assert e.value.key == "units"
