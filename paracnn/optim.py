"""The optimisers (SGD, Adam, AdamW) and learning-rate schedules.

Everything works on flat lists of floats (the model's parameter vector) with
C-level ``map``/``operator`` loops: the update touches every parameter every
step, so it must not be a per-element Python loop. With a worker pool the
training engine applies :meth:`SGD.update` slice by slice in the workers
(:mod:`paracnn.parallel.engine`); in-process it is one call over the vector.
Every optimiser also offers the same element-wise slice interface,
:meth:`~SGD.slice_update` over its named per-element buffers
(:attr:`~SGD.buffer_names`), so an engine can hold any of them in shared memory.

The update is PyTorch's ``torch.optim.SGD`` (dampening 0), in this order::

    g = grad + weight_decay * w                  # L2 penalty, if weight_decay
    buf = momentum * buf + g                     # if momentum (buf starts at 0)
    d = g + momentum * buf if nesterov else buf  # (d = g without momentum)
    w = w - lr * d

Adam and AdamW are ``torch.optim.Adam`` / ``AdamW`` (amsgrad off), per
element, for the ``t``-th step (1-based)::

    w = w * (1 - lr * weight_decay)              # AdamW only (decoupled decay)
    g = grad + weight_decay * w                  # Adam only (L2 penalty)
    m = m + (1 - beta1) * (g - m)                # torch's lerp; m, v start at 0
    v = beta2 * v + (1 - beta2) * g * g
    w = w - lr / (1 - beta1**t) * (m / (sqrt(v) / sqrt(1 - beta2**t) + eps))

Schedules (``train.schedule``):

- ``constant``: ``lr`` throughout.
- ``{type: step, step_size: S, gamma: G}``: ``lr * G ** (epoch // S)``, counted
  in **epochs** (like ``torch.optim.lr_scheduler.StepLR`` stepped per epoch).
- ``{type: cosine, min_lr: M}``: annealed per **step** over all the steps of the
  run, ``M + (lr - M) * (1 + cos(pi * step / total_steps)) / 2``.

``train.warmup_steps: W`` multiplies any of them by ``(step + 1) / W`` for the
first ``W`` global steps (0-based ``step``): a linear ramp from ``lr / W`` that
reaches the schedule's own rate at step ``W - 1``.
"""

import math
from itertools import repeat
from operator import add, mul, sub, truediv

from .errors import ConfigError
from .layer import check_float

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")


class SGD:
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    Args:
        lr: base learning rate (a schedule may change it per step).
        momentum: heavy-ball coefficient in [0, 1); 0 keeps no state.
        nesterov: use Nesterov momentum (needs momentum > 0).
        weight_decay: L2 coefficient added to the gradient.

    Example::

        opt = SGD(lr=0.1, momentum=0.9)
        weights = opt.step(weights, grads, lr=0.1)
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        if self.nesterov and self.momentum <= 0.0:
            raise ConfigError("nesterov needs momentum > 0", key="nesterov")
        self.buf = None

    def step(self, weights, grads, lr=None):
        """Return the updated weights (a new list); ``grads`` is not modified."""
        weights, buf = self.update(weights, grads, self.buf, self.lr if lr is None else lr)
        if self.momentum:
            self.buf = buf
        return weights

    def update(self, weights, grads, buf, lr):
        """One step without state of its own: ``(new weights, new momentum buffer)`` as lists.

        ``weights`` and ``buf`` may be any float sequences (the training
        engine passes slices of shared memory); ``buf`` None starts from zeros,
        and comes back None without momentum. Every element is computed on its
        own, so updating a vector slice by slice gives the bits of one call.
        """
        g = grads
        if self.weight_decay:
            g = list(map(add, g, map(mul, weights, repeat(self.weight_decay))))
        if self.momentum:
            if buf is None:
                buf = repeat(0.0)
            buf = list(map(add, map(mul, buf, repeat(self.momentum)), g))
            g = list(map(add, g, map(mul, buf, repeat(self.momentum)))) if self.nesterov else buf
        return list(map(sub, weights, map(mul, g, repeat(lr)))), buf

    @property
    def buffer_names(self):
        """The per-element state :meth:`slice_update` carries: the momentum buffer, if any."""
        return ("momentum_buffer",) if self.momentum else ()

    def slice_update(self, weights, grads, buffers, lr, step):
        """:meth:`update` in the interface every optimiser shares.

        ``buffers`` is a tuple with one sequence (or None: zeros) per name in
        :attr:`buffer_names`; ``step`` (1-based) is unused by SGD. Returns
        ``(new weights, tuple of new buffers)``.
        """
        weights, buf = self.update(weights, grads, buffers[0] if buffers else None, lr)
        return weights, ((buf,) if self.momentum else ())

    def state_dict(self):
        """JSON-safe state: the momentum buffer (None before the first step)."""
        return {"type": "sgd", "momentum_buffer": None if self.buf is None else list(self.buf)}

    def load_state_dict(self, state, num_params):
        buf = state.get("momentum_buffer")
        if buf is not None and len(buf) != num_params:
            raise ValueError(f"momentum buffer has {len(buf)} values, the model has {num_params}")
        self.buf = None if buf is None else [float(v) for v in buf]


class Adam:
    """Adam with optional L2 weight decay, step for step ``torch.optim.Adam`` (see the module docstring).

    Args:
        lr: base learning rate (a schedule may change it per step).
        betas: ``(beta1, beta2)``, the decay rates of the first and second moments, each in [0, 1).
        eps: added to the denominator, > 0.
        weight_decay: L2 coefficient added to the gradient (:class:`AdamW` decouples it).

    Per element it keeps two buffers, ``exp_avg`` (m) and ``exp_avg_sq`` (v);
    the bias correction needs the number of the step, which is the same for
    every element and is passed in. :meth:`update` is a pure function of its
    arguments, element by element, so a vector updated slice by slice gets the
    bits of one whole-vector call.

    Example::

        opt = Adam(lr=0.001)
        weights = opt.step(weights, grads)          # keeps m, v and the step count
    """

    #: AdamW sets it: the decay multiplies the weights instead of joining the gradient.
    decoupled = False
    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = _number(lr, "lr")
        self.betas = tuple(check_betas("betas", betas))
        self.eps = check_float("eps", eps, low=0.0, low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.exp_avg = self.exp_avg_sq = None
        self.steps = 0

    def step(self, weights, grads, lr=None):
        """Return the updated weights (a new list), keeping m, v and the step count."""
        self.steps += 1
        weights, (self.exp_avg, self.exp_avg_sq) = self.slice_update(
            weights, grads, (self.exp_avg, self.exp_avg_sq), self.lr if lr is None else lr, self.steps)
        return weights

    def update(self, weights, grads, exp_avg, exp_avg_sq, lr, step):
        """Step number ``step`` (1-based) without state of its own: ``(weights, exp_avg, exp_avg_sq)``.

        ``weights``, ``exp_avg`` and ``exp_avg_sq`` may be any float sequences
        (slices of shared memory); a moment given as None starts from zeros.
        """
        beta1, beta2 = self.betas
        g = grads
        if self.weight_decay and self.decoupled:
            weights = list(map(mul, weights, repeat(1.0 - lr * self.weight_decay)))
        elif self.weight_decay:
            g = list(map(add, g, map(mul, weights, repeat(self.weight_decay))))
        if exp_avg is None:
            exp_avg = repeat(0.0)
        if exp_avg_sq is None:
            exp_avg_sq = repeat(0.0)
        # NOTE: the operations are torch's, in torch's order (lerp_ as m + (1 - beta1) * (g - m) for
        # beta1 > 0.5; addcdiv_ as (step_size * m) / denom): over 20 float64 steps about 93 % of the
        # weights come out bit-equal to torch's and the rest within 1e-13 relative (its vectorised
        # kernels may fuse a multiply-add).
        m = list(map(add, exp_avg, map(mul, map(sub, g, exp_avg), repeat(1.0 - beta1))))
        v = list(map(add, map(mul, exp_avg_sq, repeat(beta2)), map(mul, map(mul, g, repeat(1.0 - beta2)), g)))
        step_size = lr / (1.0 - beta1 ** step)
        root = math.sqrt(1.0 - beta2 ** step)
        denom = map(add, map(truediv, map(math.sqrt, v), repeat(root)), repeat(self.eps))
        return list(map(sub, weights, map(truediv, map(mul, m, repeat(step_size)), denom))), m, v

    def slice_update(self, weights, grads, buffers, lr, step):
        """:meth:`update` in the interface every optimiser shares (see :meth:`SGD.slice_update`)."""
        weights, m, v = self.update(weights, grads, buffers[0], buffers[1], lr, step)
        return weights, (m, v)

    def state_dict(self):
        """JSON-safe state: the step count and both moments (None before the first step)."""
        return {"type": "adamw" if self.decoupled else "adam", "step": self.steps,
                "exp_avg": None if self.exp_avg is None else list(self.exp_avg),
                "exp_avg_sq": None if self.exp_avg_sq is None else list(self.exp_avg_sq)}

    def load_state_dict(self, state, num_params):
        for name in self.buffer_names:
            buf = state.get(name)
            if buf is not None and len(buf) != num_params:
                raise ValueError(f"{name} has {len(buf)} values, the model has {num_params}")
        self.steps = int(state.get("step", 0))
        self.exp_avg, self.exp_avg_sq = (None if state.get(name) is None
                                         else [float(v) for v in state[name]]
                                         for name in self.buffer_names)


def check_betas(name, value):
    """The rule of ``train.betas`` (the schema's too): two numbers, each in [0, 1); returns a list."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{name} must be two numbers [beta1, beta2], such as [0.9, 0.999], "
                          f"got {value!r}", key=name)
    return [check_float(f"{name}[{i}]", v, low=0.0, high=1.0, high_open=True)
            for i, v in enumerate(value)]


class AdamW(Adam):
    """Adam with decoupled weight decay, step for step ``torch.optim.AdamW``.

    The same arguments as :class:`Adam`; ``weight_decay`` multiplies the
    weights by ``1 - lr * weight_decay`` before the Adam step instead of
    joining the gradient. (torch's AdamW defaults to ``weight_decay=0.01``;
    here it is 0, as for every optimiser, so set it.)
    """

    decoupled = True


def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` so that their L2 norm is at most ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the factor is
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1. The norm is
    summed with ``math.fsum`` (exactly rounded), so it is the same number in
    every process and Python version. Returns ``(grads, norm)``.
    """
    norm = grad_norm(grads)
    coef = clip_coef(norm, max_norm)
    if coef is not None:
        grads = list(map(mul, grads, repeat(coef)))
    return grads, norm


def grad_norm(grads):
    """The L2 norm of ``grads``, exactly rounded (``math.fsum``)."""
    return math.sqrt(math.fsum(map(mul, grads, grads)))


def clip_coef(norm, max_norm):
    """The factor :func:`clip_grad_norm` multiplies by, or None when it leaves the gradient alone."""
    coef = max_norm / (norm + 1e-6)
    return coef if coef < 1.0 else None


class Schedule:
    """Learning rate as a function of (epoch, global step); see the module docstring.

    Args:
        spec: ``"constant"`` or a mapping with ``type`` (``step`` or ``cosine``).
        lr: the base learning rate.
        total_steps: the number of optimiser steps in the whole run (cosine).
        warmup_steps: ramp the rate up linearly over this many first steps (0: none).
    """

    def __init__(self, spec, lr, total_steps, warmup_steps=0):
        self.lr = float(lr)
        self.total_steps = max(1, int(total_steps))
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}",
                              key="warmup_steps")
        self.warmup_steps = warmup_steps
        if spec is None:
            spec = "constant"
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict) or spec.get("type") not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)} "
                              f"(a name or a mapping with 'type:'), got {spec!r}", key="schedule")
        self.spec = dict(spec)
        self.type = spec["type"]
        extra = set(spec) - {"type", *{"constant": (), "step": ("step_size", "gamma"),
                                       "cosine": ("min_lr",)}[self.type]}
        if extra:
            raise ConfigError(f"schedule {self.type} does not take {', '.join(sorted(extra))}",
                              key="schedule")
        if self.type == "step":
            self.step_size = _positive_int(spec.get("step_size", 1), "step_size")
            self.gamma = _number(spec.get("gamma", 0.1), "gamma")
        elif self.type == "cosine":
            self.min_lr = _number(spec.get("min_lr", 0.0), "min_lr")

    def __call__(self, epoch, step):
        """The rate for global ``step`` (0-based) inside ``epoch`` (0-based)."""
        rate = self._rate(epoch, step)
        if step < self.warmup_steps:
            return rate * (step + 1) / self.warmup_steps
        return rate

    def _rate(self, epoch, step):
        if self.type == "step":
            return self.lr * self.gamma ** (epoch // self.step_size)
        if self.type == "cosine":
            t = min(step, self.total_steps) / self.total_steps
            return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t)) / 2.0
        return self.lr


def make_optimizer(train_cfg):
    """The optimiser named by ``train.optimizer``, configured from ``train``."""
    name = train_cfg.get("optimizer", "sgd")
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; available: {', '.join(OPTIMIZERS)}",
                          key="optimizer")
    lr = _number(train_cfg.get("lr", 0.01), "lr")
    weight_decay = _number(train_cfg.get("weight_decay", 0.0), "weight_decay")
    if name != "sgd":
        kind = Adam if name == "adam" else AdamW
        return kind(lr=lr, betas=train_cfg.get("betas", (0.9, 0.999)),
                    eps=train_cfg.get("eps", 1e-8), weight_decay=weight_decay)
    momentum = _number(train_cfg.get("momentum", 0.0), "momentum")
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum}", key="momentum")
    return SGD(lr=lr, momentum=momentum, nesterov=bool(train_cfg.get("nesterov", False)),
               weight_decay=weight_decay)


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", key=name)
    return float(value)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}", key=name)
    return value
