"""The layers against PyTorch on the same weights, in float64 (runs when torch is installed)."""

import random

import pytest

from paracnn_extras.leaky_relu import LeakyReLU
from paracnn_extras.pointwise_conv import PointwiseConv
from paracnn_extras.prelu import PReLU
from paracnn_extras.residual import Residual

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _compare(layer, shape, torch_fn, seed=0):
    """Forward and backward of ``layer`` and ``torch_fn(x, **params)`` agree on one sample."""
    rng = random.Random(seed)
    layer.build(shape, rng)
    for values in layer.params.values():
        values[:] = [rng.uniform(-1, 1) for _ in values]
    x = [rng.uniform(-1, 1) for _ in range(torch.Size(shape).numel())]
    y = layer.forward(list(x))
    dy = [rng.uniform(-1, 1) for _ in y]
    dx = layer.backward(list(dy))
    layer.sync_grads()

    tx = torch.tensor(x, dtype=torch.float64).reshape(1, *shape).requires_grad_()
    tp = {name: torch.tensor(v, dtype=torch.float64).reshape(layer.param_shapes[name]).requires_grad_()
          for name, v in layer.params.items()}
    ty = torch_fn(tx, tp)
    ty.backward(torch.tensor(dy, dtype=torch.float64).reshape(ty.shape))
    _close(y, ty)
    _close(dx, tx.grad)
    for name, t in tp.items():
        _close(layer.grads[name], t.grad)


def _close(ours, theirs):
    theirs = theirs.detach().flatten().tolist()
    assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-12)


def test_leaky_relu():
    _compare(LeakyReLU(alpha=0.3), (2, 3, 3), lambda x, p: F.leaky_relu(x, 0.3))


@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu(num_parameters):
    _compare(PReLU(num_parameters=num_parameters), (3, 2, 4), lambda x, p: F.prelu(x, p["weight"]))


def test_prelu_on_vectors():
    _compare(PReLU(num_parameters=6), (6,), lambda x, p: F.prelu(x, p["weight"]))


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv(bias):
    _compare(PointwiseConv(filters=4, bias=bias), (3, 3, 5),
             lambda x, p: F.conv2d(x, p["weight"], p.get("bias")))


def test_residual_with_strided_projection():
    block = Residual(layers=[
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "prelu", "num_parameters": 4},
        {"type": "pointwise_conv", "filters": 4}])

    def reference(x, p):
        h = F.conv2d(x, p["layers.0.weight"], p["layers.0.bias"], stride=2, padding=1)
        h = F.prelu(h, p["layers.1.weight"])
        h = F.conv2d(h, p["layers.2.weight"], p["layers.2.bias"])
        return h + F.conv2d(x, p["projection.weight"], stride=2)

    _compare(block, (2, 7, 7), reference)
