"""Layers that break the layer contract without raising, for ``tests/test_contract.py``.

Both train without an error and would silently use wrong gradients: one returns
``dx`` one element short, one assigns its gradient instead of adding it. They
live in an importable module so that spawned workers could unpickle them, and
:func:`contract_registry` registers them next to the installed layers, the way
a plugin would.
"""

import math
from importlib import metadata

from paracnn import kernels as K
from paracnn.layer import Layer
from paracnn.registry import Registry, discover

DIST = "paracnn-test-contract"
LAYERS = {
    "scale": "tests.faults.contract:Scale",
    "short_dx": "tests.faults.contract:ShortDx",
    "assigns_grads": "tests.faults.contract:AssignsGrads",
    "raises": "tests.faults.contract:Raises",
    "wrong_gradient": "tests.faults.contract:WrongGradient",
}


def contract_registry():
    """The installed layers plus the ones in this module, as a plugin would register them."""
    extra = [(metadata.EntryPoint(name, value, "paracnn.layers"), DIST, "0")
             for name, value in LAYERS.items()]
    return Registry(entry_points=discover() + extra, disable_plugins=False)


class Scale(Layer):
    """``y = a·x`` with one learnable ``a``: a correct layer, which the two below break."""

    examples = (({}, (2, 3, 3)),)
    transient = ("_x",)

    def build(self, input_shape, rng=None):
        self.input_shape = self.output_shape = tuple(input_shape)
        n = math.prod(input_shape)
        self.add_param("a", (1,), init={"type": "constant", "value": 0.5}, rng=rng, fan_in=n, fan_out=n)
        return self.output_shape

    def forward(self, x):
        self._x = x
        return K.scaled(x, self.params["a"][0])

    def backward(self, dy):
        self.grads["a"][0] += K.sumprod(dy, self._x)
        return K.scaled(dy, self.params["a"][0])


class OldAddParam(Scale):
    """Calls add_param positionally, as plugins written for paracnn 0.1 do."""

    def build(self, input_shape, rng=None):
        self.input_shape = self.output_shape = tuple(input_shape)
        n = math.prod(input_shape)
        self.add_param("a", (1,), {"type": "constant", "value": 0.5}, rng, n, n)
        return self.output_shape


class ShortDx(Scale):
    """Returns dx one element short: the layer before it silently gets a truncated gradient."""

    def backward(self, dy):
        return super().backward(dy)[:-1]


class AssignsGrads(Scale):
    """Assigns its gradient instead of adding it: a micro-batch keeps only its last sample's."""

    def backward(self, dy):
        self.grads["a"] = [K.sumprod(dy, self._x)]
        return K.scaled(dy, self.params["a"][0])


class Raises(Scale):
    """Raises in backward: reported as a training step reports it, not as a contract failure."""

    def backward(self, dy):
        return 1 / 0


class WrongGradient(Scale):
    """Keeps the contract but computes da three times too large: only finite differences see it."""

    def backward(self, dy):
        self.grads["a"][0] += 3.0 * K.sumprod(dy, self._x)
        return K.scaled(dy, self.params["a"][0])
