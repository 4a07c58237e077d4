"""Logistic sigmoid.

Registered as ``sigmoid`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math
from itertools import repeat
from operator import add, mul, sub

from ..layer import Layer


class Sigmoid(Layer):
    """Element-wise ``1 / (1 + exp(-x))``.

    Computed as ``0.5 + 0.5·tanh(x/2)``, which never overflows, unlike
    ``exp(-x)`` for x below about -709.

    Shape:
        - Input: any shape. Output: the same shape.

    Backward: dx = dy · y · (1 - y).

    Example::

        Sigmoid().forward([0.0])    # -> [0.5]
    """

    examples = (({}, (12,)),)
    transient = ("_y",)

    def forward(self, x):
        t = map(math.tanh, map(mul, x, repeat(0.5)))
        self._y = list(map(add, repeat(0.5), map(mul, t, repeat(0.5))))
        return self._y

    def backward(self, dy):
        y = self._y
        return list(map(mul, dy, map(mul, y, map(sub, repeat(1.0), y))))
