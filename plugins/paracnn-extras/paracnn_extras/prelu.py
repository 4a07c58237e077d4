"""Parametric ReLU: a leaky ReLU whose negative slope is learnt.

Registered as ``prelu`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math

from paracnn import kernels as K
from paracnn.errors import ShapeError
from paracnn.layer import Layer, check_float, check_int, format_shape


class PReLU(Layer):
    """Element-wise ``x if x > 0 else a_c·x`` with a learnable slope ``a`` (PyTorch's ``PReLU``).

    The channel is the first dimension: ``C`` of a ``(C, H, W)`` image, or each
    feature of a flat ``(n,)`` vector, as PyTorch treats ``(N, C, ...)`` inputs.

    Args:
        num_parameters: 1 (one slope shared by every element) or the number of
            channels (one slope per channel). Default 1.
        init: the initial slope. Default 0.25.

    Shape:
        - Input: any shape. Output: the same shape.

    Attributes:
        weight: ``(num_parameters,)``, the slopes.

    Backward: dx = dy where x > 0, else a_c·dy; da_c += Σ_{x ≤ 0 in channel c} dy·x.

    Example::

        PReLU(num_parameters=6).build((6, 24, 24))    # -> (6, 24, 24), 6 slopes
    """

    examples = (({}, (2, 3, 3)), ({"num_parameters": 3, "init": 0.1}, (3, 4, 4)),
                ({"num_parameters": 5}, (5,)))
    transient = ("_x", "_negative")

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.num_parameters = check_int("num_parameters", num_parameters)
        self.init = check_float("init", init)

    def build(self, input_shape, rng=None):
        channels = input_shape[0]
        if self.num_parameters not in (1, channels):
            raise ShapeError(
                f"has num_parameters: {self.num_parameters} but its input {format_shape(input_shape)} "
                f"has {channels} channels; use num_parameters: 1 (shared) or {channels} (per channel)")
        self.input_shape = self.output_shape = tuple(input_shape)
        # Elements per slope: a channel's plane, or the whole sample when the slope is shared.
        self._plane = math.prod(input_shape) // self.num_parameters
        self.add_param("weight", (self.num_parameters,), rng=rng, fan_in=channels,
                       fan_out=channels, init={"type": "constant", "value": self.init})
        return self.output_shape

    def forward(self, x):
        self._x = x
        # Only the negative part is scaled; keep it, the slope's gradient is dy · it.
        self._negative = [v if v < 0.0 else 0.0 for v in x]
        y = []
        for a, xs in zip(self.params["weight"], K.rows_of(x, self._plane)):
            y += [v if v > 0.0 else a * v for v in xs]
        return y

    def backward(self, dy):
        gw, p = self.grads["weight"], self._plane
        dx = [] if self.needs_input_grad else None
        for c, (a, g, xs) in enumerate(zip(self.params["weight"], K.rows_of(dy, p),
                                           K.rows_of(self._x, p))):
            gw[c] += K.sumprod(g, self._negative[c * p:(c + 1) * p])
            if dx is not None:
                dx += [d if v > 0.0 else a * d for d, v in zip(g, xs)]
        return dx

    def get_config(self):
        return {"num_parameters": self.num_parameters, "init": self.init}

