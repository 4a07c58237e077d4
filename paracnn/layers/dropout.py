"""Dropout.

Registered as ``dropout`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import random
from operator import mul

from ..layer import Layer, check_float


class Dropout(Layer):
    """Zero each element with probability ``rate`` in training; scale the rest by 1/(1-rate).

    The mask is drawn from ``random.Random(self.seed)``, where ``seed`` is set
    by the model for every sample from (run seed, epoch, sample index, layer
    index). The same sample therefore gets the same mask in any process, which
    keeps multi-worker training bit-identical to serial training. In
    evaluation (``training`` false) the layer is the identity.

    Args:
        rate: probability of dropping an element, ``0 <= rate < 1``. Default 0.5.

    Shape:
        - Input: any shape. Output: the same shape.

    Backward: dx = dy · mask.

    Example::

        Dropout(rate=0.25)
    """

    examples = (({"rate": 0.3}, (20,)), ({"rate": 0.0}, (5,)))
    transient = ("_mask",)

    def __init__(self, rate=0.5):
        super().__init__()
        self.rate = check_float("rate", rate, low=0.0, high=1.0, high_open=True)

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            self._mask = None
            return x
        rng = random.Random(0 if self.seed is None else self.seed)
        keep, rate = 1.0 / (1.0 - self.rate), self.rate
        self._mask = [keep if rng.random() >= rate else 0.0 for _ in range(len(x))]
        return list(map(mul, x, self._mask))

    def backward(self, dy):
        if self._mask is None:
            return dy
        return list(map(mul, dy, self._mask))

    def get_config(self):
        return {"rate": self.rate}
