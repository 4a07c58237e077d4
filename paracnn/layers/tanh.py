"""Hyperbolic tangent.

Registered as ``tanh`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math
from itertools import repeat
from operator import mul, sub

from ..layer import Layer


class Tanh(Layer):
    """Element-wise ``tanh(x)``.

    Shape:
        - Input: any shape. Output: the same shape.

    Backward: dx = dy · (1 - y²).

    Example::

        Tanh().forward([0.0])    # -> [0.0]
    """

    examples = (({}, (12,)),)
    transient = ("_y",)

    def forward(self, x):
        self._y = list(map(math.tanh, x))
        return self._y

    def backward(self, dy):
        y = self._y
        return list(map(mul, dy, map(sub, repeat(1.0), map(mul, y, y))))
