"""SGD: PyTorch's ``torch.optim.SGD`` (dampening 0), per element, in this order::

    g = grad + weight_decay * w                  # L2 penalty, if weight_decay
    buf = momentum * buf + g                     # if momentum (buf starts at 0)
    d = g + momentum * buf if nesterov else buf  # (d = g without momentum)
    w = w - lr * d
"""

from itertools import repeat
from operator import add, mul, sub

from ..kernels import JIT
from .base import Optimizer
from .rules import RULES, check_combination


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    Args:
        lr: base learning rate, > 0 (a schedule may change it per step).
        momentum: heavy-ball coefficient in [0, 1); 0 keeps no state.
        nesterov: use Nesterov momentum (needs momentum > 0).
        weight_decay: L2 coefficient added to the gradient, >= 0.

    Example::

        opt = SGD(lr=0.1, momentum=0.9)
        weights = opt.step(weights, grads)          # keeps the momentum buffer
    """

    name = "sgd"
    state_names = ("momentum_buffer",)

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = RULES["momentum"]("momentum", momentum)
        self.nesterov = RULES["nesterov"]("nesterov", nesterov)
        self.weight_decay = RULES["weight_decay"]("weight_decay", weight_decay)
        check_combination({"momentum": self.momentum, "nesterov": self.nesterov})

    @property
    def buffer_names(self):
        """The momentum buffer, or nothing without momentum."""
        return self.state_names if self.momentum else ()

    def update(self, weights, grads, buffers, lr, step):
        """See :meth:`Optimizer.update <paracnn.optim.base.Optimizer.update>`; ``step`` is unused."""
        if JIT:
            return self._update_loop(weights, grads, buffers, lr)
        g = grads
        if self.weight_decay:
            g = list(map(add, g, map(mul, weights, repeat(self.weight_decay))))
        if not self.momentum:
            return list(map(sub, weights, map(mul, g, repeat(lr)))), ()
        buf = buffers[0] if buffers[0] is not None else repeat(0.0)
        buf = list(map(add, map(mul, buf, repeat(self.momentum)), g))
        d = list(map(add, g, map(mul, buf, repeat(self.momentum)))) if self.nesterov else buf
        return list(map(sub, weights, map(mul, d, repeat(lr)))), (buf,)

    def _update_loop(self, weights, grads, buffers, lr):
        """:meth:`update` as one indexed loop, for PyPy's JIT (chained maps stay opaque to it):
        the same operations per element, in the same order, so the same bits."""
        wd, m, nesterov = self.weight_decay, self.momentum, self.nesterov
        n = len(grads)  # NOTE: weights may be a cffi pointer into shared memory, without a length
        new_w = [0.0] * n
        buf = None
        if m:
            old = buffers[0]
            buf = [0.0] * n
        for i in range(n):
            g = grads[i]
            if wd:
                g = g + weights[i] * wd
            if m:
                b = (old[i] * m if old is not None else 0.0 * m) + g
                buf[i] = b
                d = g + b * m if nesterov else b
            else:
                d = g
            new_w[i] = weights[i] - d * lr
        return new_w, (() if not m else (buf,))
