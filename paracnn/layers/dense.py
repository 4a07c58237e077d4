"""Fully connected layer.

Registered as ``dense`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

from itertools import compress
from operator import add

from .. import jit_kernels as J
from .. import kernels as K
from ..layer import Layer, check_bool, check_init, check_int, expect_flat


class Dense(Layer):
    """Fully connected layer: ``y = W x + b`` (PyTorch's ``Linear``).

    Args:
        units: number of outputs.
        bias: learn a bias. Default true.
        init: weight initialiser (see :mod:`paracnn.init`). Default ``he_uniform``.
        bias_init: bias initialiser. Default ``zeros``.

    Shape:
        - Input: ``(in_features,)``
        - Output: ``(units,)``

    Attributes:
        weight: ``(units, in_features)``, flat.
        bias: ``(units,)``.

    Backward: dW += dy ⊗ x, batched over the micro-batch until ``sync_grads``
    (one dot product over samples per weight); dx = Wᵀ dy over the non-zero dy.

    Example::

        Dense(units=10).build((84,))    # -> (10,)
    """

    examples = (({"units": 5}, (7,)), ({"units": 3, "bias": False}, (6,)))
    # per sample (_x, _rows), then the deferred gradient work that prepare() empties
    transient = ("_x", "_rows", "_pending_x", "_pending_dy", "_pending_w", "_pending_n")

    #: deferred samples after which backward syncs anyway, to bound memory
    max_pending = 256

    def __init__(self, units, bias=True, init="he_uniform", bias_init="zeros"):
        super().__init__()
        self._forget_pending()
        self.units = check_int("units", units)
        self.bias = check_bool("bias", bias)
        self.init = check_init("init", init)
        self.bias_init = check_init("bias_init", bias_init)

    def build(self, input_shape, rng=None):
        (n_in,) = expect_flat(input_shape)
        self.input_shape = tuple(input_shape)
        self.output_shape = (self.units,)
        fans = {"fan_in": n_in, "fan_out": self.units}
        self.add_param("weight", (self.units, n_in), init=self.init, rng=rng, **fans)
        if self.bias:
            self.add_param("bias", (self.units,), init=self.bias_init, rng=rng, **fans)
        self.prepare()
        return self.output_shape

    def prepare(self):
        """Start with no deferred gradient work; a pickled copy starts afresh too."""
        self._forget_pending()

    def forward(self, x):
        self._x = x
        if K.JIT:
            return J.dense_forward(x, self.params["weight"], self.params.get("bias"))
        # NOTE: rows are re-sliced every sample (about 0.1 ms for LeNet's largest layer)
        # rather than cached: parameters may be replaced or edited in place between
        # calls (set_weights, finite-difference checks), and a cache would go stale.
        self._rows = K.rows_of(self.params["weight"], self.input_shape[0])
        y = K.matvec(self._rows, x)
        if self.bias:
            y = list(map(add, y, self.params["bias"]))
        return y

    def backward(self, dy):
        n_in = self.input_shape[0]
        if K.JIT:
            return self._backward_jit(dy)
        self._pending_x.append(self._x)
        self._pending_dy.append(dy)
        if len(self._pending_dy) >= self.max_pending:
            self.sync_grads()
        if self.bias:
            K.add_into(self.grads["bias"], dy)
        if not self.needs_input_grad:
            return None
        live = list(compress(dy, dy))
        if not live:
            return [0.0] * n_in
        # dx_i = Σ_o dy_o W_oi over live outputs: transposing the live rows makes it long dots.
        return K.dots(live, zip(*compress(self._rows, dy)))

    def _backward_jit(self, dy):
        # The weight gradient is summed over the pending samples in a scratch
        # vector, then added once: the order of the deferred dots below.
        if self._pending_w is None:
            self._pending_w = [0.0] * len(self.params["weight"])
        dx = J.dense_backward(self._x, dy, self.params["weight"], self._pending_w,
                              self.needs_input_grad)
        self._pending_n += 1
        if self._pending_n >= self.max_pending:
            self.sync_grads()
        if self.bias:
            K.add_into(self.grads["bias"], dy)
        return dx

    def sync_grads(self):
        if self._pending_w is not None:
            J.add_to(self.grads["weight"], self._pending_w)
            self._forget_pending()
            return
        if not self._pending_dy:
            return
        n_in, gw = self.input_shape[0], self.grads["weight"]
        columns = list(zip(*self._pending_x))  # one tuple per input feature, over samples
        for o, dy_o in enumerate(zip(*self._pending_dy)):
            if any(dy_o):
                K.add_into(gw, K.dots(dy_o, columns), o * n_in)
        self._forget_pending()

    def _forget_pending(self):
        # CPython keeps the samples (x, dy); the JIT path keeps their running sum dW and a count.
        self._pending_x, self._pending_dy, self._pending_w, self._pending_n = [], [], None, 0

    def zero_grad(self):
        super().zero_grad()
        self._forget_pending()

    def macs(self):
        return self.units * self.input_shape[0]

    def get_config(self):
        return {"units": self.units, "bias": self.bias, "init": self.init,
                "bias_init": self.bias_init}
