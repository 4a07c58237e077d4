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
import time
from array import array
from itertools import repeat
from operator import add, truediv

from ..loss import softmax_cross_entropy


def sample_seed(seed, epoch, index):
    """The seed of sample ``index`` in ``epoch`` of a run seeded with ``seed`` (63 bits)."""
    digest = hashlib.blake2b(f"paracnn-sample:{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def mean_of_slots(grads, num_params, count, samples, lo, hi):
    """Elements ``lo:hi`` of ``(((slot0 + slot1) + slot2) + ...) / samples`` over ``count`` slots.

    Each element is added in slot order and divided once, so any cut of
    ``0:num_params`` into slices gives the bits of the whole-vector reduction.
    """
    p = num_params
    mean = grads[lo:hi].tolist()
    for k in range(1, count):
        mean = list(map(add, mean, grads[k * p + lo:k * p + hi]))
    return list(map(truediv, mean, repeat(samples)))


class Compute:
    """A model plus the views it reads weights from and writes gradients to.

    Args:
        model: a built :class:`~paracnn.model.Sequential`.
        params: a float64 buffer (``memoryview`` cast ``'d'`` or ``array``) of
            ``num_params`` values: the current weights.
        grads: a float64 buffer of ``slots * num_params`` values.
        datasets: ``{split: ImageSet}``.
        mean: a float64 buffer of ``num_params`` values that :meth:`reduce`
            writes the mean gradient into (workers only).
    """

    def __init__(self, model, params, grads, datasets, mean=None):
        self.model = model
        self.params = params
        self.grads = grads
        self.datasets = datasets
        self.mean = mean
        self.num_params = model.num_params()
        self.version = None

    def load_weights(self, version):
        """Copy the shared weights into the model, once per ``version`` (once per step)."""
        if version != self.version:
            self.model.set_weights(self.params)
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
            x, y = data.sample(i)
            loss, pred = model.train_sample(x, y, seed=sample_seed(seed, epoch, i))
            loss_sum += loss
            correct += pred == y
        p = self.num_params
        self.grads[slot * p:(slot + 1) * p] = model.get_grads()
        return loss_sum, correct, time.perf_counter() - start

    def reduce(self, count, samples, lo, hi):
        """Write elements ``lo:hi`` of the mean of slots ``0..count-1`` into ``mean``.

        Reads only the slots and writes only its slice, so a rerun (after a
        worker died) gives the same bits. Returns busy seconds.
        """
        start = time.perf_counter()
        self.mean[lo:hi] = array("d", mean_of_slots(self.grads, self.num_params, count, samples, lo, hi))
        return time.perf_counter() - start

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
