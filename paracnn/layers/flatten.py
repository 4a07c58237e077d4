"""Flatten an image into a vector.

Registered as ``flatten`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math

from ..layer import Layer


class Flatten(Layer):
    """Reshape ``(C, H, W)`` to ``(C·H·W,)``. Data is already flat, so this is free.

    Shape:
        - Input: any shape ``(d1, ..., dn)``.
        - Output: ``(d1·...·dn,)``.

    Backward: dx = dy.

    Example::

        Flatten().build((16, 4, 4))    # -> (256,)
    """

    examples = (({}, (2, 3, 3)),)

    def build(self, input_shape, rng=None):
        self.input_shape = tuple(input_shape)
        self.output_shape = (math.prod(input_shape),)
        return self.output_shape

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy
