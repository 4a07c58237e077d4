"""Plugin layers that fail in every way a plugin can, outside forward and backward.

Each must end a command with one line naming the layer's config line and the
plugin's distribution, exit 2 (``tests/test_plugins.py``).
"""

import sys

from paracnn.layer import Layer


class _Identity(Layer):
    def build(self, input_shape, rng):
        return input_shape

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class RaisesInInit(_Identity):
    def __init__(self):
        super().__init__()
        raise RuntimeError("no licence file found")


class ExitsInInit(_Identity):
    def __init__(self):
        super().__init__()
        sys.exit(3)


class RaisesInBuild(_Identity):
    def build(self, input_shape, rng):
        raise KeyError("weights")


class ExitsInBuild(_Identity):
    def build(self, input_shape, rng):
        raise SystemExit("bye")


class ReturnsNone(_Identity):
    def build(self, input_shape, rng):
        return None


class ReturnsText(_Identity):
    def build(self, input_shape, rng):
        return "32"


LAYERS = {"raises_in_init": "RaisesInInit", "exits_in_init": "ExitsInInit",
          "raises_in_build": "RaisesInBuild", "exits_in_build": "ExitsInBuild",
          "returns_none": "ReturnsNone", "returns_text": "ReturnsText"}
