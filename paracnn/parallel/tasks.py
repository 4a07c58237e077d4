"""The work itself: one micro-batch of gradients, or one chunk of evaluation.

The same :class:`Compute` object runs inside every worker process and, for
``--workers 0``, in the parent, so both paths do exactly the same arithmetic.

Determinism rests on three things done here:

- a micro-batch's samples are processed in the order given, and the model
  *adds* each per-sample gradient into its buffers, so a micro-batch sum does
  not depend on the process that computed it;
- the per-sample seed (dropout masks, ...) is :func:`sample_seed` of
  ``(seed, epoch, index)``, never of the process;
- the result goes into the gradient **slot of its micro-batch** (``slot * P``
  in the shared gradient block), and :func:`mean_of_slots` adds the slots in
  slot order, element by element, wherever it runs (a worker reducing one
  slice of the vector, or the parent reducing all of it).
"""

import hashlib
import math
import time
from array import array
from itertools import repeat
from operator import add, mul, truediv

from ..loss import softmax_cross_entropy


def sample_seed(seed, epoch, index):
    """The seed of sample ``index`` in ``epoch`` of a run seeded with ``seed`` (63 bits)."""
    digest = hashlib.blake2b(f"paracnn-sample:{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def mean_of_slots(grads, num_params, count, samples, lo, hi, prefix=None, done=0):
    """Elements ``lo:hi`` of ``(((slot0 + slot1) + slot2) + ...) / samples`` over ``count`` slots.

    Each element is added in slot order and divided once, so any cut of
    ``0:num_params`` into slices gives the bits of the whole-vector reduction.
    With ``done`` > 0, ``prefix[lo:hi]`` already holds the sum of slots
    ``0..done-1`` (see :func:`add_slots`) and only the later slots are added:
    the same additions in the same order, so the same bits.
    """
    total = _slot_sum(grads, num_params, lo, hi, prefix, done, count)
    return list(map(truediv, total, repeat(samples)))


def add_slots(grads, num_params, prefix, lo, hi, done, upto):
    """Extend the running sum ``prefix[lo:hi]`` of slots ``0..done-1`` to slots ``0..upto-1``.

    ``done`` 0 starts from slot 0. The engine calls this in the parent while
    a worker would otherwise sit idle at the end of a step's micro-batches.
    """
    prefix[lo:hi] = array("d", _slot_sum(grads, num_params, lo, hi, prefix, done, upto))


def _slot_sum(grads, p, lo, hi, prefix, done, upto):
    """Lazily, elements ``lo:hi`` of slots ``0..upto-1`` added in slot order, starting from
    ``prefix`` (the sum of the first ``done``) when ``done`` > 0.

    NOTE: the maps are chained, not materialised per slot: one list at the end.
    """
    total, first = (prefix[lo:hi], done) if done else (grads[lo:hi], 1)
    for k in range(first, upto):
        total = map(add, total, grads[k * p + lo:k * p + hi])
    return total


def all_finite(values):
    """True if no value is NaN or infinite: one C-level sum, and a full scan only if that overflows."""
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


class Compute:
    """A model plus the views it reads weights from and writes gradients to.

    Args:
        model: a built :class:`~paracnn.model.Sequential`.
        state: a float64 buffer (``memoryview`` cast ``'d'``) of ``4 * num_params``
            values: two weight vectors, then two momentum buffers. Version ``v``
            of the weights is vector ``v % 2``; :meth:`update` reads version
            ``v`` and writes ``v + 1`` into the other one, so the weights tasks
            read are never half-updated.
        grads: a float64 buffer of ``slots * num_params`` values.
        datasets: ``{split: ImageSet}``.
        optimizer: the :class:`~paracnn.optim.SGD` whose hyperparameters
            :meth:`update` applies (its own ``buf`` is not used).
        mean: a float64 buffer of ``num_params`` values that :meth:`reduce`
            writes the mean gradient into (with workers).
        prefix: a float64 buffer of ``num_params`` values holding partial sums
            of the first slots, per slice (see :func:`add_slots`; with workers).
    """

    def __init__(self, model, state, grads, datasets, optimizer=None, mean=None, prefix=None):
        self.model = model
        self.state = state
        self.grads = grads
        self.datasets = datasets
        self.optimizer = optimizer
        self.mean = mean
        self.prefix = prefix
        self.num_params = model.num_params()
        self.version = None

    def weights(self, version):
        """The view of version ``version`` of the weights."""
        p, b = self.num_params, version % 2
        return self.state[b * p:(b + 1) * p]

    def momentum(self, version):
        """The view of the momentum buffer that goes with version ``version`` of the weights."""
        p, b = self.num_params, 2 + version % 2
        return self.state[b * p:(b + 1) * p]

    def load_weights(self, version):
        """Copy the shared weights into the model, once per ``version`` (once per step)."""
        if version != self.version:
            self.model.set_weights(self.weights(version))
            self.version = version

    def train(self, version, split, seed, epoch, indices, slot):
        """Sum the gradients of ``indices`` into gradient slot ``slot``.

        Returns ``(loss_sum, correct, busy_seconds)``.
        """
        start = time.perf_counter()
        self.load_weights(version)
        model, data = self.model, self.datasets[split]
        model.zero_grad()
        loss_sum, correct = 0.0, 0
        for i in indices:
            x, y = data.train_sample(i, seed, epoch)
            loss, pred = model.train_sample(x, y, seed=sample_seed(seed, epoch, i))
            loss_sum += loss
            correct += pred == y
        p = self.num_params
        self.grads[slot * p:(slot + 1) * p] = model.get_grads()
        return loss_sum, correct, time.perf_counter() - start

    def reduce(self, count, samples, lo, hi, done=0):
        """Write elements ``lo:hi`` of the mean of slots ``0..count-1`` into ``mean``.

        ``done``: slots already summed into ``prefix`` (see :func:`mean_of_slots`).
        Reads only the slots and the prefix and writes only its slice of
        ``mean``, so a rerun (after a worker died) gives the same bits.
        Returns ``(gradient finite, busy seconds)``.
        """
        start = time.perf_counter()
        g = mean_of_slots(self.grads, self.num_params, count, samples, lo, hi, self.prefix, done)
        self.mean[lo:hi] = array("d", g)
        return all_finite(g), time.perf_counter() - start

    def update(self, version, count, samples, lo, hi, lr, scale=None, done=0):
        """One optimiser step on elements ``lo:hi``, from weights ``version`` to ``version + 1``.

        The gradient is the mean of slots ``0..count-1`` (``done`` of them
        already summed into ``prefix``) or, with ``count`` None, the one a
        :meth:`reduce` pass left in ``mean`` (gradient clipping needs the whole
        vector's norm first), times ``scale`` unless None.
        Returns ``(gradient finite, weights finite, busy seconds)``; see :meth:`apply`.
        """
        start = time.perf_counter()
        if count is not None:
            g = mean_of_slots(self.grads, self.num_params, count, samples, lo, hi, self.prefix, done)
        else:
            g = self.mean[lo:hi].tolist()
        return (*self.apply(version, lo, hi, g, lr, scale), time.perf_counter() - start)

    def apply(self, version, lo, hi, g, lr, scale=None):
        """The optimiser step on elements ``lo:hi`` with the mean gradient slice ``g`` (a list).

        Reads the weights and momentum of ``version`` and writes only slice
        ``lo:hi`` of those of ``version + 1``, so a rerun after a worker died
        gives the same bits, and until the parent publishes ``version + 1``
        (it does not when something is NaN) the old weights stand untouched.
        The arithmetic is :meth:`SGD.update <paracnn.optim.SGD.update>`'s, element
        by element, so any cut into slices gives the bits of one whole-vector step.
        Returns ``(gradient finite, weights finite)``.
        """
        finite_grad = all_finite(g)
        if scale is not None:
            g = list(map(mul, g, repeat(scale)))
        opt = self.optimizer
        buf = self.momentum(version)[lo:hi] if opt.momentum else None
        w, buf = opt.update(self.weights(version)[lo:hi], g, buf, lr)
        self.weights(version + 1)[lo:hi] = array("d", w)
        if buf is not None:
            self.momentum(version + 1)[lo:hi] = array("d", buf)
        return finite_grad, all_finite(w)

    def evaluate(self, version, split, indices):
        """Inference over ``indices``: ``(losses, predicted classes, busy_seconds)``, per sample."""
        start = time.perf_counter()
        self.load_weights(version)
        model, data = self.model, self.datasets[split]
        losses, preds = [], []
        for i in indices:
            x, y = data.sample(i)
            logits = model.predict(x)
            losses.append(softmax_cross_entropy(logits, y)[0])
            preds.append(logits.index(max(logits)))
        return losses, preds, time.perf_counter() - start
