"""1×1 convolution: a dense layer applied at every position, mixing channels.

Registered as ``pointwise_conv`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

from itertools import repeat

from paracnn import kernels as K
from paracnn.layer import Layer, check_bool, check_init, check_int, expect_image


class PointwiseConv(Layer):
    """1×1 convolution: ``y[o, p] = Σ_c W[o, c]·x[c, p] + b[o]`` at every position ``p``.

    The same as ``conv2d`` with ``kernel_size: 1``, computed without an im2col
    table: one transpose of the input gives a ``C_in``-vector per position.
    Use it to change the number of channels cheaply (bottlenecks, projections).

    Args:
        filters: number of output channels.
        bias: learn one bias per output channel. Default true.
        init: weight initialiser (see :mod:`paracnn.init`). Default ``he_uniform``.
        bias_init: bias initialiser. Default ``zeros``.

    Shape:
        - Input: ``(C_in, H, W)``
        - Output: ``(filters, H, W)``

    Attributes:
        weight: ``(filters, C_in, 1, 1)``, flat (PyTorch's ``Conv2d`` layout).
        bias: ``(filters,)``.

    Backward: dW[o, c] = Σ_p dy[o, p]·x[c, p] (one long dot each);
    dx[c, p] = Σ_o W[o, c]·dy[o, p]; db[o] = Σ_p dy[o, p].

    Example::

        PointwiseConv(filters=16).build((6, 12, 12))    # -> (16, 12, 12)
    """

    examples = (({"filters": 3}, (2, 4, 4)), ({"filters": 2, "bias": False}, (3, 3, 5)))
    transient = ("_rows",)

    def __init__(self, filters, bias=True, init="he_uniform", bias_init="zeros"):
        super().__init__()
        self.filters = check_int("filters", filters)
        self.bias = check_bool("bias", bias)
        self.init = check_init("init", init)
        self.bias_init = check_init("bias_init", bias_init)

    def build(self, input_shape, rng=None):
        c_in, h, w = expect_image(input_shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = (self.filters, h, w)
        fans = {"fan_in": c_in, "fan_out": self.filters}
        self.add_param("weight", (self.filters, c_in, 1, 1), init=self.init, rng=rng, **fans)
        if self.bias:
            self.add_param("bias", (self.filters,), init=self.bias_init, rng=rng, **fans)
        return self.output_shape

    def forward(self, x):
        c_in = self.input_shape[0]
        self._rows = rows = K.rows_of(x, len(x) // c_in)
        filters = K.rows_of(self.params["weight"], c_in)
        if self.bias:
            # The bias rides along as a constant-1.0 input channel, so one dot gives w·x + b.
            filters = [f + [b] for f, b in zip(filters, self.params["bias"])]
            rows = rows + [repeat(1.0)]
        # One transpose (in C) turns channel rows into a C_in-tuple per position.
        return K.conv_forward(list(zip(*rows)), filters)

    def backward(self, dy):
        c_in, gw = self.input_shape[0], self.grads["weight"]
        plane = len(dy) // self.filters
        for o, g in enumerate(K.rows_of(dy, plane)):
            if any(g):
                K.add_into(gw, K.dots(g, self._rows), o * c_in)
                if self.bias:
                    self.grads["bias"][o] += sum(g)
        if not self.needs_input_grad:
            return None
        # dx is the forward pass again, with Wᵀ as the filters and dy as the input.
        columns = list(zip(*K.rows_of(self.params["weight"], c_in)))
        positions = list(zip(*K.rows_of(dy, plane)))
        return K.conv_forward(positions, columns)

    def macs(self):
        return self.filters * self.input_shape[0] * self.input_shape[1] * self.input_shape[2]

    def get_config(self):
        return {"filters": self.filters, "bias": self.bias, "init": self.init,
                "bias_init": self.bias_init}
