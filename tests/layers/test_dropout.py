import pytest

from paracnn.errors import ConfigError
from paracnn.layers.dropout import Dropout
from paracnn.testing import check_layer


def _run(seed, training=True, rate=0.5, n=1000):
    d = Dropout(rate)
    d.build((n,))
    d.training, d.seed = training, seed
    return d, d.forward([1.0] * n)


def test_identity_in_evaluation():
    _, y = _run(seed=1, training=False)
    assert y == [1.0] * 1000


def test_mask_depends_only_on_seed():
    _, a = _run(seed=7)
    _, b = _run(seed=7)
    _, c = _run(seed=8)
    assert a == b and a != c
    assert set(a) == {0.0, 2.0}                    # kept values scaled by 1/(1-rate)
    assert 400 < a.count(0.0) < 600               # about half dropped


def test_backward_uses_the_same_mask():
    d, y = _run(seed=3, n=50)
    assert d.backward([1.0] * 50) == y


def test_gradients():
    check_layer(Dropout, {"rate": 0.3}, (20,))


@pytest.mark.parametrize("rate", [1.0, -0.1, "half"])
def test_bad_rate(rate):
    with pytest.raises(ConfigError):
        Dropout(rate)
