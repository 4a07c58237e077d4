"""Each layer against PyTorch on the same weights, in float64 (runs when torch is installed)."""

import random

import pytest

from paracnn.layers.avgpool2d import AvgPool2d
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.layers.sigmoid import Sigmoid
from paracnn.layers.tanh import Tanh
from paracnn.loss import softmax_cross_entropy

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rel(a, b):
    a, b = torch.tensor(a, dtype=torch.float64).flatten(), b.detach().flatten()
    return float(((a - b).abs().max() / b.abs().max().clamp(min=1e-300)).item())


def _torch_fn(layer):
    if isinstance(layer, Conv2d):
        pad = layer._pads()[0]
        if layer.padding == "same":
            return lambda x, w, b: F.conv2d(x, w, b, stride=layer.stride, padding="same")
        return lambda x, w, b: F.conv2d(x, w, b, stride=layer.stride, padding=pad)
    if isinstance(layer, Dense):
        return lambda x, w, b: F.linear(x, w, b)
    if isinstance(layer, MaxPool2d):
        return lambda x: F.max_pool2d(x, layer.kernel_size, layer.stride)
    if isinstance(layer, AvgPool2d):
        return lambda x: F.avg_pool2d(x, layer.kernel_size, layer.stride)
    return {ReLU: torch.relu, Sigmoid: torch.sigmoid, Tanh: torch.tanh}[type(layer)]


@pytest.mark.parametrize("layer,shape", [
    (Conv2d(6, 5), (1, 12, 12)),
    (Conv2d(4, 3, stride=2, padding=1, bias=False), (3, 9, 9)),
    (Conv2d(3, 4, padding="same"), (2, 6, 7)),
    (Dense(7), (13,)),
    (MaxPool2d(2), (3, 8, 8)),
    (MaxPool2d(3, stride=2), (2, 9, 9)),
    (AvgPool2d(2), (3, 8, 8)),
    (ReLU(), (2, 5, 5)),
    (Sigmoid(), (17,)),
    (Tanh(), (17,)),
], ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "x".join(map(str, v)))
def test_forward_and_backward_match_torch(layer, shape):
    rng = random.Random(0)
    layer.build(shape, rng)
    x = [rng.uniform(-1, 1) for _ in range(torch.Size(shape).numel())]
    if "bias" in layer.params:
        layer.params["bias"][:] = [rng.uniform(-1, 1) for _ in layer.params["bias"]]
    y = layer.forward(list(x))
    dy = [rng.uniform(-1, 1) for _ in y]
    dx = layer.backward(list(dy))
    layer.sync_grads()

    tx = torch.tensor(x, dtype=torch.float64).reshape(1, *shape).requires_grad_()
    params = [torch.tensor(layer.params[n], dtype=torch.float64).reshape(layer.param_shapes[n])
              .requires_grad_() for n in layer.params]
    fn = _torch_fn(layer)
    if isinstance(layer, (Conv2d, Dense)):
        ty = fn(tx, params[0], params[1] if len(params) > 1 else None)
    else:
        ty = fn(tx)
    ty.backward(torch.tensor(dy, dtype=torch.float64).reshape(ty.shape))
    assert _rel(y, ty) <= 1e-9
    assert _rel(dx, tx.grad) <= 1e-9
    for name, p in zip(layer.params, params):
        assert _rel(layer.grads[name], p.grad) <= 1e-9, name


def test_softmax_cross_entropy_matches_torch():
    logits = [3.0, -1.0, 0.5, 1000.0, 999.0]
    loss, d = softmax_cross_entropy(logits, 4)
    t = torch.tensor([logits], dtype=torch.float64, requires_grad=True)
    tl = F.cross_entropy(t, torch.tensor([4]))
    tl.backward()
    assert abs(loss - tl.item()) <= 1e-12
    assert _rel(d, t.grad) <= 1e-12
