"""Adam and AdamW: ``torch.optim.Adam`` / ``AdamW`` (amsgrad off), per element, for step ``t`` (1-based)::

    w = w * (1 - lr * weight_decay)              # AdamW only (decoupled decay)
    g = grad + weight_decay * w                  # Adam only (L2 penalty)
    m = m + (1 - beta1) * (g - m)                # torch's lerp; m, v start at 0
    v = beta2 * v + (1 - beta2) * g * g
    w = w - lr / (1 - beta1**t) * (m / (sqrt(v) / sqrt(1 - beta2**t) + eps))
"""

import math
from itertools import repeat
from operator import add, mul, sub, truediv

from ..kernels import JIT
from .base import Optimizer
from .rules import RULES


class Adam(Optimizer):
    """Adam with optional L2 weight decay, step for step ``torch.optim.Adam``.

    Args:
        lr: base learning rate, > 0 (a schedule may change it per step).
        betas: ``(beta1, beta2)``, the decay rates of the first and second moments, each in [0, 1).
        eps: added to the denominator, > 0.
        weight_decay: L2 coefficient added to the gradient, >= 0 (:class:`AdamW` decouples it).

    Per element it keeps two buffers, ``exp_avg`` (m) and ``exp_avg_sq`` (v);
    the bias correction needs the number of the step, the same for every
    element, which :meth:`update` is given.

    Example::

        opt = Adam(lr=0.001)
        weights = opt.step(weights, grads)          # keeps m, v and the step count
    """

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")
    counts_steps = True
    #: AdamW sets it: the decay multiplies the weights instead of joining the gradient.
    decoupled = False

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        self.betas = tuple(RULES["betas"]("betas", betas))
        self.eps = RULES["eps"]("eps", eps)
        self.weight_decay = RULES["weight_decay"]("weight_decay", weight_decay)

    def update(self, weights, grads, buffers, lr, step):
        """See :meth:`Optimizer.update <paracnn.optim.base.Optimizer.update>`; ``buffers`` is ``(m, v)``."""
        if JIT:
            return self._update_loop(weights, grads, buffers, lr, step)
        beta1, beta2 = self.betas
        g = grads
        if self.weight_decay and self.decoupled:
            weights = list(map(mul, weights, repeat(1.0 - lr * self.weight_decay)))
        elif self.weight_decay:
            g = list(map(add, g, map(mul, weights, repeat(self.weight_decay))))
        exp_avg, exp_avg_sq = (repeat(0.0) if b is None else b for b in buffers)
        # NOTE: the operations are torch's, in torch's order (lerp_ as m + (1 - beta1) * (g - m) for
        # beta1 > 0.5; addcdiv_ as (step_size * m) / denom): over 20 float64 steps about 93 % of the
        # weights come out bit-equal to torch's and the rest within 1e-13 relative (its vectorised
        # kernels may fuse a multiply-add).
        m = list(map(add, exp_avg, map(mul, map(sub, g, exp_avg), repeat(1.0 - beta1))))
        v = list(map(add, map(mul, exp_avg_sq, repeat(beta2)), map(mul, map(mul, g, repeat(1.0 - beta2)), g)))
        step_size = lr / (1.0 - beta1 ** step)
        root = math.sqrt(1.0 - beta2 ** step)
        denom = map(add, map(truediv, map(math.sqrt, v), repeat(root)), repeat(self.eps))
        return list(map(sub, weights, map(truediv, map(mul, m, repeat(step_size)), denom))), (m, v)


    def _update_loop(self, weights, grads, buffers, lr, step):
        """:meth:`update` as one indexed loop, for PyPy's JIT: the same operations per element,
        in the same order, so the same bits."""
        beta1, beta2 = self.betas
        wd, decoupled, eps = self.weight_decay, self.decoupled, self.eps
        decay = 1.0 - lr * wd
        step_size = lr / (1.0 - beta1 ** step)
        root = math.sqrt(1.0 - beta2 ** step)
        c1, c2 = 1.0 - beta1, 1.0 - beta2
        old_m, old_v = buffers
        n = len(grads)  # NOTE: weights may be a cffi pointer into shared memory, without a length
        new_w, m, v = [0.0] * n, [0.0] * n, [0.0] * n
        sqrt = math.sqrt
        for i in range(n):
            w, g = weights[i], grads[i]
            if wd and decoupled:
                w = w * decay
            elif wd:
                g = g + w * wd
            e = old_m[i] if old_m is not None else 0.0
            s = old_v[i] if old_v is not None else 0.0
            mi = e + (g - e) * c1
            vi = s * beta2 + (g * c2) * g
            m[i], v[i] = mi, vi
            new_w[i] = w - (mi * step_size) / (sqrt(vi) / root + eps)
        return new_w, (m, v)


class AdamW(Adam):
    """Adam with decoupled weight decay, step for step ``torch.optim.AdamW``.

    The same arguments as :class:`Adam`; ``weight_decay`` multiplies the
    weights by ``1 - lr * weight_decay`` before the Adam step instead of
    joining the gradient. (torch's AdamW defaults to ``weight_decay=0.01``;
    here it is 0, as for every optimiser, so set it.)
    """

    name = "adamw"
    decoupled = True
