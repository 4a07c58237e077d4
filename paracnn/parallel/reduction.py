"""The slot-order reduction: adding the micro-batches' gradient slots, wherever it runs.

A step's gradient is ``(((slot0 + slot1) + slot2) + ...) / samples``, element
by element, in slot order. :func:`mean_of_slots` computes any slice of it,
so the in-process engine (one slice, the whole vector), the workers (one
slice each) and the Ray driver all perform the same additions in the same
order. :class:`TailSums` lets the parent add the first, finished slots
while a worker idles at the end of a step, without changing those bits.
"""

import math
import time
from array import array
from itertools import repeat
from operator import add, truediv

from ..kernels import JIT
from .doubles import Doubles


def mean_of_slots(grads, num_params, count, samples, lo, hi, prefix=None, done=0):
    """Elements ``lo:hi`` of ``(((slot0 + slot1) + slot2) + ...) / samples`` over ``count`` slots.

    Each element is added in slot order and divided once, so any cut of
    ``0:num_params`` into slices gives the bits of the whole-vector reduction.
    With ``done`` > 0, ``prefix[lo:hi]`` already holds the sum of slots
    ``0..done-1`` (see :func:`add_slots`) and only the later slots are added:
    the same additions in the same order, so the same bits.
    """
    total = _slot_sum(grads, num_params, lo, hi, prefix, done, count)
    if JIT:
        return [t / samples for t in total]
    return list(map(truediv, total, repeat(samples)))


def add_slots(grads, num_params, prefix, lo, hi, done, upto):
    """Extend the running sum ``prefix[lo:hi]`` of slots ``0..done-1`` to slots ``0..upto-1``.

    ``done`` 0 starts from slot 0. The parent calls this (see :class:`TailSums`) while
    a worker would otherwise sit idle at the end of a step's micro-batches.
    """
    prefix[lo:hi] = array("d", _slot_sum(grads, num_params, lo, hi, prefix, done, upto))


def _slot_sum(grads, p, lo, hi, prefix, done, upto):
    """Lazily, elements ``lo:hi`` of slots ``0..upto-1`` added in slot order, starting from
    ``prefix`` (the sum of the first ``done``) when ``done`` > 0.

    NOTE: the maps are chained, not materialised per slot: one list at the end.
    """
    if JIT and isinstance(grads, Doubles) and grads.cdata() is not None:
        return _slot_sum_loops(grads, p, lo, hi, prefix, done, upto)
    total, first = (prefix[lo:hi], done) if done else (grads[lo:hi], 1)
    for k in range(first, upto):
        total = map(add, total, grads[k * p + lo:k * p + hi])
    return total


def _slot_sum_loops(grads, p, lo, hi, prefix, done, upto):
    """:func:`_slot_sum` for PyPy, as a list: the same additions in the same order, as indexed
    loops over the raw memory (see :meth:`Doubles.cdata`).

    NOTE: up to seven slots are added per pass over the elements, each element's
    ``((t + a) + b) + ...`` written out: one pass over LeNet-5's 44,426 weights with eight
    slots took 0.17 ms, against 0.86 ms for a pass per slot and 1.0 ms for a loop over slots
    inside the loop over elements.
    """
    c, n = grads.cdata(), hi - lo
    total, k = (prefix[lo:hi].tolist(), done) if done else (grads[lo:hi].tolist(), 1)
    while k < upto:
        left = upto - k
        a = c + (k * p + lo)
        if left >= 7:
            b, d, e, f, g, h = (c + ((k + j) * p + lo) for j in range(1, 7))
            for i in range(n):
                total[i] = ((((((total[i] + a[i]) + b[i]) + d[i]) + e[i]) + f[i]) + g[i]) + h[i]
            k += 7
        elif left >= 3:
            b, d = c + ((k + 1) * p + lo), c + ((k + 2) * p + lo)
            for i in range(n):
                total[i] = ((total[i] + a[i]) + b[i]) + d[i]
            k += 3
        else:
            for i in range(n):
                total[i] += a[i]
            k += 1
    return total


def all_finite(values):
    """True if no value is NaN or infinite: one C-level sum, and a full scan only if that overflows."""
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


class TailSums:
    """Work for the parent while a worker sits idle at the end of a step's micro-batches.

    The slots must be added in slot order, but the first ones are final long
    before the last micro-batch is: once slots ``0..k-1`` are all done, the
    parent adds them up, one slice of the vector per call (:func:`add_slots`),
    into the ``prefix`` buffer, and records in :attr:`done` how far each
    slice got. The reduce and update tasks then start from there and add only
    the rest: the same additions in the same order, so the bits do not
    change, and a core that would idle does part of the reduction. Only the
    parent writes ``prefix``, and only before those tasks are sent, so a
    worker's death cannot corrupt it.

    Args:
        compute: the parent's :class:`~paracnn.parallel.tasks.Compute` (its
            ``grads`` and ``prefix`` are the shared blocks the workers use).
        slices: the ``(lo, hi)`` slices the reduce and update tasks work on.
    """

    def __init__(self, compute, slices):
        self.compute, self.slices = compute, slices
        self.done = [0] * len(slices)
        self.seconds = 0.0

    def __call__(self, results):
        start = time.perf_counter()
        ready = 0
        while ready < len(results) and results[ready] is not None:
            ready += 1
        if ready < 2:
            return False
        k = min(range(len(self.done)), key=self.done.__getitem__)
        if self.done[k] >= ready:
            return False
        c = self.compute
        lo, hi = self.slices[k]
        add_slots(c.grads, c.num_params, c.prefix, lo, hi, self.done[k], ready)
        self.done[k] = ready
        self.seconds += time.perf_counter() - start
        return True
