"""What every optimiser shares: one pure ``update``, the stateful ``step`` over it, and its state.

An optimiser keeps hyperparameters and, for :meth:`Optimizer.step`, its own
per-element buffers (:attr:`Optimizer.buffer_names`) and step count. The
training engine keeps those in shared memory instead and calls the same
:meth:`Optimizer.update` slice by slice; checkpoints pack and unpack its state
with the same :meth:`Optimizer.pack_state` and :meth:`Optimizer.unpack_state`
that :meth:`Optimizer.state_dict` and :meth:`Optimizer.load_state_dict` use.
"""

import math
from itertools import repeat
from operator import mul

from .rules import RULES


class Optimizer:
    """The base of :class:`~paracnn.optim.SGD`, :class:`~paracnn.optim.Adam` and :class:`~paracnn.optim.AdamW`.

    Subclasses set :attr:`name`, :attr:`state_names` and :meth:`update`.
    """

    #: the ``train.optimizer`` name, also the checkpoint state's ``type``.
    name = None
    #: every per-element buffer a checkpoint holds (None when not in use).
    state_names = ()
    #: True when :meth:`update` uses the step number (Adam's bias correction): the state keeps it.
    counts_steps = False

    def __init__(self, lr):
        self.lr = RULES["lr"]("lr", lr)
        self.steps = 0
        for name in self.state_names:
            setattr(self, name, None)

    @property
    def buffer_names(self):
        """The per-element buffers :meth:`update` reads and returns, in order."""
        return self.state_names

    def update(self, weights, grads, buffers, lr, step):
        """Step number ``step`` (1-based) without state of its own: ``(new weights, new buffers)``.

        ``weights`` and each of ``buffers`` (one per name in :attr:`buffer_names`;
        None starts from zeros) may be any float sequences, such as slices of
        shared memory (under PyPy, where the loop versions run, anything indexable
        with as many values as ``grads``: the engine passes cffi pointers into
        shared memory); results are lists. Every element is computed on its
        own, so updating a vector slice by slice gives the bits of one call.
        """
        raise NotImplementedError

    def step(self, weights, grads, lr=None):
        """Return the updated weights (a new list), keeping the buffers and the step count here."""
        self.steps += 1
        buffers = tuple(getattr(self, name) for name in self.buffer_names)
        weights, buffers = self.update(weights, grads, buffers, self.lr if lr is None else lr, self.steps)
        for name, buf in zip(self.buffer_names, buffers):
            setattr(self, name, buf)
        return weights

    def pack_state(self, buffers, steps):
        """JSON-safe state from ``buffers`` (``{name: values}``; a missing one: None) after ``steps``."""
        state = {"type": self.name}
        if self.counts_steps:
            state["step"] = steps
        for name in self.state_names:
            buf = buffers.get(name)
            state[name] = None if buf is None else list(buf)
        return state

    def unpack_state(self, state, num_params):
        """``(buffers, steps)`` from a :meth:`pack_state` mapping, checked against this optimiser.

        Raises ValueError (one line, which reads after "the state" or "checkpoint
        PATH") when the state is another optimiser's or a buffer does not hold
        ``num_params`` finite numbers. ``steps`` is None when the state does not
        count them (SGD's).
        """
        kind = state.get("type", "sgd")
        if kind != self.name:
            raise ValueError(f"holds the state of optimizer {kind}, not {self.name}: continue it with "
                             f"optimizer {kind}, or start a new run with {self.name}")
        buffers = {}
        for name in self.buffer_names:
            buf = state.get(name)
            if buf is None:
                continue
            if not isinstance(buf, list) or len(buf) != num_params:
                size = len(buf) if isinstance(buf, list) else type(buf).__name__
                raise ValueError(f"holds an optimizer {name} of {size} values, but the model has "
                                 f"{num_params} weights")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in buf):
                raise ValueError(f"holds an optimizer {name} with a value that is not a finite number")
            buffers[name] = [float(v) for v in buf]
        steps = state.get("step") if self.counts_steps else None
        if self.counts_steps and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise ValueError(f"holds optimizer step {steps!r}, expected a whole number >= 0")
        return buffers, steps

    def state_dict(self):
        """JSON-safe state: the buffers (None before the first step) and, for Adam, the step count."""
        return self.pack_state({n: getattr(self, n) for n in self.state_names}, self.steps)

    def load_state_dict(self, state, num_params):
        """Take the state of :meth:`state_dict`; ValueError when it does not fit (see :meth:`unpack_state`)."""
        try:
            buffers, steps = self.unpack_state(state, num_params)
        except ValueError as e:
            raise ValueError(f"the state {e}") from None
        for name in self.state_names:
            setattr(self, name, buffers.get(name))
        self.steps = steps if steps is not None else 0


def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` so that their L2 norm is at most ``max_norm``: :func:`grad_norm`, then :func:`clip_coef`.

    Like ``torch.nn.utils.clip_grad_norm_``: the factor is
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1. The engine
    uses the same two functions (the norm of the whole mean gradient, then
    the factor each update slice applies). Returns ``(grads, norm)``.
    """
    norm = grad_norm(grads)
    coef = clip_coef(norm, max_norm)
    if coef is not None:
        grads = list(map(mul, grads, repeat(coef)))
    return grads, norm


def grad_norm(grads):
    """The L2 norm of ``grads``, exactly rounded (``math.fsum``): the same in every process."""
    return math.sqrt(math.fsum(map(mul, grads, grads)))


def clip_coef(norm, max_norm):
    """The factor :func:`clip_grad_norm` multiplies by, or None when it leaves the gradient alone."""
    coef = max_norm / (norm + 1e-6)
    return coef if coef < 1.0 else None
