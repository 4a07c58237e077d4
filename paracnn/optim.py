"""The optimiser and learning-rate schedules.

Everything works on flat lists of floats (the model's parameter vector) with
C-level ``map``/``operator`` loops: the update touches every parameter every
step, so it must not be a per-element Python loop. With a worker pool the
training engine applies :meth:`SGD.update` slice by slice in the workers
(:mod:`paracnn.parallel.engine`); in-process it is one call over the vector.

The update is PyTorch's ``torch.optim.SGD`` (dampening 0), in this order::

    g = grad + weight_decay * w                  # L2 penalty, if weight_decay
    buf = momentum * buf + g                     # if momentum (buf starts at 0)
    d = g + momentum * buf if nesterov else buf  # (d = g without momentum)
    w = w - lr * d

Schedules (``train.schedule``):

- ``constant``: ``lr`` throughout.
- ``{type: step, step_size: S, gamma: G}``: ``lr * G ** (epoch // S)``, counted
  in **epochs** (like ``torch.optim.lr_scheduler.StepLR`` stepped per epoch).
- ``{type: cosine, min_lr: M}``: annealed per **step** over all the steps of the
  run, ``M + (lr - M) * (1 + cos(pi * step / total_steps)) / 2``.
"""

import math
from itertools import repeat
from operator import add, mul, sub

from .errors import ConfigError

OPTIMIZERS = ("sgd",)
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

    def state_dict(self):
        """JSON-safe state: the momentum buffer (None before the first step)."""
        return {"type": "sgd", "momentum_buffer": None if self.buf is None else list(self.buf)}

    def load_state_dict(self, state, num_params):
        buf = state.get("momentum_buffer")
        if buf is not None and len(buf) != num_params:
            raise ValueError(f"momentum buffer has {len(buf)} values, the model has {num_params}")
        self.buf = None if buf is None else [float(v) for v in buf]


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
    """

    def __init__(self, spec, lr, total_steps):
        self.lr = float(lr)
        self.total_steps = max(1, int(total_steps))
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
    momentum = _number(train_cfg.get("momentum", 0.0), "momentum")
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum}", key="momentum")
    return SGD(lr=_number(train_cfg.get("lr", 0.01), "lr"), momentum=momentum,
               nesterov=bool(train_cfg.get("nesterov", False)),
               weight_decay=_number(train_cfg.get("weight_decay", 0.0), "weight_decay"))


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", key=name)
    return float(value)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}", key=name)
    return value
