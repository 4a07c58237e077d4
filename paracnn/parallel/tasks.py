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
  slice of the vector, or the parent reducing all of it; see
  :mod:`~paracnn.parallel.reduction`).

Each method takes one task of :mod:`~paracnn.parallel.protocol` and returns
its named result; :func:`~paracnn.parallel.protocol.run_task` picks the method.
"""

import hashlib
import time
from array import array
from itertools import repeat
from operator import mul

from ..loss import softmax_cross_entropy
from .doubles import Doubles
from .protocol import EvalResult, ReduceResult, TrainResult, UpdateResult
from .reduction import add_slots, all_finite, mean_of_slots

__all__ = ["Compute", "sample_seed", "add_slots", "all_finite", "mean_of_slots"]


def readable(view):
    """``view`` as the optimiser reads it fastest: a :class:`Doubles` (PyPy) as cffi's pointer
    into it, whose indexing the optimiser's loop compiles to plain loads (no copy), a
    CPython ``memoryview`` as it is (its maps read it in C as they go)."""
    if isinstance(view, Doubles):
        c = view.cdata()
        return view.tolist() if c is None else c
    return view


def sample_seed(seed, epoch, index):
    """The seed of sample ``index`` in ``epoch`` of a run seeded with ``seed`` (63 bits)."""
    digest = hashlib.blake2b(f"paracnn-sample:{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class Compute:
    """A model plus the views it reads weights from and writes gradients to.

    Args:
        model: a built :class:`~paracnn.model.Sequential`.
        state: a float64 buffer (``memoryview`` cast ``'d'``) of ``2 * (1 + B) * num_params``
            values: two weight vectors, then two of each of the optimiser's ``B``
            per-element buffers. Version ``v`` of the weights is vector ``v % 2``;
            :meth:`update` reads version ``v`` and writes ``v + 1`` into the other
            one, so the weights tasks read are never half-updated.
        grads: a float64 buffer of ``slots * num_params`` values.
        datasets: ``{split: ImageSet}``.
        optimizer: the :class:`~paracnn.optim.Optimizer` whose
            :meth:`~paracnn.optim.base.Optimizer.update` :meth:`update` applies
            (its own buffers are not used); None for a Compute that never updates.
        mean: a float64 buffer of ``num_params`` values that :meth:`reduce`
            writes the mean gradient into.
        prefix: a float64 buffer of ``num_params`` values holding partial sums
            of the first slots, per slice (see :func:`add_slots`).
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

    def buffer(self, index, version):
        """The view of the optimiser's buffer ``index`` (of its ``buffer_names``) that goes with
        version ``version`` of the weights."""
        p, b = self.num_params, 2 * (1 + index) + version % 2
        return self.state[b * p:(b + 1) * p]

    def load_weights(self, version):
        """Copy the shared weights into the model, once per ``version`` (once per step); seconds taken."""
        if version == self.version:
            return 0.0
        start = time.perf_counter()
        self.model.set_weights(self.weights(version))
        self.version = version
        return time.perf_counter() - start

    def train(self, task):
        """Sum the gradients of a :class:`TrainTask`'s indices into its gradient slot."""
        start = time.perf_counter()
        read = self.load_weights(task.version)
        model, data = self.model, self.datasets[task.split]
        seed, epoch = task.seed, task.epoch
        model.zero_grad()
        loss_sum, correct = 0.0, 0
        for i in task.indices:
            x, y = data.train_sample(i, task.seed, task.epoch)
            loss, pred = model.train_sample(x, y, seed=sample_seed(seed, epoch, i))
            loss_sum += loss
            correct += pred == y
        p, slot = self.num_params, task.slot
        grads = model.get_grads()
        written = time.perf_counter()
        self.grads[slot * p:(slot + 1) * p] = grads
        end = time.perf_counter()
        return TrainResult(loss_sum, correct, end - start, read, end - written, time.monotonic())

    def reduce(self, task):
        """Write elements ``lo:hi`` of the mean of slots ``0..count-1`` into ``mean``.

        ``task.done``: slots already summed into ``prefix`` (see :func:`mean_of_slots`).
        Reads only the slots and the prefix and writes only its slice of
        ``mean``, so a rerun (after a worker died) gives the same bits.
        """
        start = time.perf_counter()
        lo, hi = task.lo, task.hi
        g = mean_of_slots(self.grads, self.num_params, task.count, task.samples, lo, hi, self.prefix,
                          task.done)
        self.mean[lo:hi] = array("d", g)
        return ReduceResult(all_finite(g), time.perf_counter() - start, time.monotonic())

    def update(self, task):
        """One optimiser step on elements ``lo:hi``, from weights ``version`` to ``version + 1``.

        The gradient is the mean of slots ``0..count-1`` (``done`` of them
        already summed into ``prefix``) or, with ``count`` None, the one a
        :meth:`reduce` pass left in ``mean`` (gradient clipping needs the whole
        vector's norm first), times ``scale`` unless None. See :meth:`apply`.
        """
        start = time.perf_counter()
        lo, hi = task.lo, task.hi
        if task.count is not None:
            g = mean_of_slots(self.grads, self.num_params, task.count, task.samples, lo, hi,
                              self.prefix, task.done)
        else:
            g = self.mean[lo:hi].tolist()
        reduced = time.perf_counter()
        finite, read, written = self._apply(task.version, lo, hi, g, task.lr, task.step, task.scale)
        end = time.perf_counter()
        return UpdateResult(*finite, end - start, reduced - start, read, written, time.monotonic())

    def apply(self, version, lo, hi, g, lr, step, scale=None):
        """Optimiser step ``step`` (1-based) on elements ``lo:hi`` with the mean gradient slice ``g``.

        Reads the weights and buffers of ``version`` and writes only slice
        ``lo:hi`` of those of ``version + 1``, so a rerun after a worker died
        gives the same bits, and until the parent publishes ``version + 1``
        (it does not when something is NaN) the old weights stand untouched.
        The arithmetic is the optimiser's :meth:`~paracnn.optim.base.Optimizer.update`,
        element by element, so any cut into slices gives the bits of one
        whole-vector step. Returns ``(gradient finite, weights finite)``.
        """
        return self._apply(version, lo, hi, g, lr, step, scale)[0]

    def _apply(self, version, lo, hi, g, lr, step, scale):
        """:meth:`apply`, and the seconds it spent reading and writing shared memory."""
        finite_grad = all_finite(g)
        if scale is not None:
            g = list(map(mul, g, repeat(scale)))
        count = len(self.optimizer.buffer_names)
        start = time.perf_counter()
        weights = readable(self.weights(version)[lo:hi])
        buffers = tuple(readable(self.buffer(i, version)[lo:hi]) for i in range(count))
        read = time.perf_counter() - start
        w, buffers = self.optimizer.update(weights, g, buffers, lr, step)
        start = time.perf_counter()
        self.weights(version + 1)[lo:hi] = array("d", w)
        for i, buf in enumerate(buffers):
            self.buffer(i, version + 1)[lo:hi] = array("d", buf)
        return (finite_grad, all_finite(w)), read, time.perf_counter() - start

    def evaluate(self, task):
        """Inference over an :class:`EvalTask`'s indices: losses and predicted classes, per sample."""
        start = time.perf_counter()
        self.load_weights(task.version)
        model, data = self.model, self.datasets[task.split]
        losses, preds = [], []
        for i in task.indices:
            x, y = data.sample(i)
            logits = model.predict(x)
            losses.append(softmax_cross_entropy(logits, y)[0])
            preds.append(logits.index(max(logits)))
        return EvalResult(losses, preds, time.perf_counter() - start, time.monotonic())
