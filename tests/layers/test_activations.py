"""ReLU, Sigmoid and Tanh: values at known points, extremes, and gradients."""

import math

import pytest

from paracnn.layers.relu import ReLU
from paracnn.layers.sigmoid import Sigmoid
from paracnn.layers.tanh import Tanh
from paracnn.testing import check_layer


def test_relu_values_and_backward_mask():
    relu = ReLU()
    relu.build((4,))
    assert relu.forward([-2.0, 0.0, 3.0, -0.0]) == [0.0, 0.0, 3.0, 0.0]
    assert relu.backward([1.0, 1.0, 1.0, 1.0]) == [0.0, 0.0, 1.0, 0.0]


def test_sigmoid_values_and_no_overflow_at_extremes():
    s = Sigmoid()
    s.build((3,))
    y = s.forward([0.0, 2.0, -1000.0])
    assert y[0] == 0.5
    assert abs(y[1] - 1.0 / (1.0 + math.exp(-2.0))) < 1e-15
    assert y[2] == 0.0
    assert s.forward([1000.0])[0] == 1.0


def test_tanh_values():
    t = Tanh()
    t.build((2,))
    assert t.forward([0.0, 1.0]) == [0.0, math.tanh(1.0)]
    assert t.backward([2.0, 1.0]) == [2.0, 1.0 - math.tanh(1.0) ** 2]


@pytest.mark.parametrize("cls,shape", [(ReLU, (2, 3, 3)), (Sigmoid, (10,)), (Tanh, (2, 2, 2))])
def test_gradients(cls, shape):
    check_layer(cls, {}, shape)
