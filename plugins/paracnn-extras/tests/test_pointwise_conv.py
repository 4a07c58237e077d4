"""pointwise_conv is exactly conv2d with kernel_size 1, on the same weights."""

import random

import pytest

from paracnn.errors import ShapeError
from paracnn.layers.conv2d import Conv2d
from paracnn_extras.pointwise_conv import PointwiseConv


@pytest.mark.parametrize("bias", [True, False])
def test_matches_conv2d_with_a_1x1_kernel(bias):
    shape, rng = (3, 4, 5), random.Random(1)
    ours, core = PointwiseConv(filters=2, bias=bias), Conv2d(filters=2, kernel_size=1, bias=bias)
    assert ours.build(shape, random.Random(0)) == core.build(shape, random.Random(0)) == (2, 4, 5)
    assert ours.param_shapes == core.param_shapes
    for name in core.params:
        core.params[name][:] = [rng.uniform(-1, 1) for _ in core.params[name]]
        ours.params[name][:] = core.params[name]
    x = [rng.uniform(-1, 1) for _ in range(60)]
    dy = [rng.uniform(-1, 1) for _ in range(40)]
    assert ours.forward(list(x)) == pytest.approx(core.forward(list(x)), rel=1e-12, abs=1e-12)
    assert ours.backward(list(dy)) == pytest.approx(core.backward(list(dy)), rel=1e-12, abs=1e-12)
    for name in core.grads:
        assert ours.grads[name] == pytest.approx(core.grads[name], rel=1e-12, abs=1e-12)
    assert ours.macs() == core.macs()


def test_skips_dx_when_the_model_does_not_need_it():
    layer = PointwiseConv(filters=2)
    layer.build((1, 2, 2), random.Random(0))
    layer.needs_input_grad = False
    layer.forward([1.0, 2.0, 3.0, 4.0])
    assert layer.backward([1.0] * 8) is None
    assert layer.grads["bias"] == [4.0, 4.0]


def test_needs_an_image():
    with pytest.raises(ShapeError, match="expects an image input"):
        PointwiseConv(filters=2).build((10,))
