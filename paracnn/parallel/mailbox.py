"""Tasks and results through shared memory: each worker's two rings, and the codec of the named types.

Measured on LeNet-5 under PyPy (2 workers, 2 cores), a pipe round trip (pickle,
write, ``select``, read, unpickle) took 0.15 to 0.25 ms, unpickling one task
0.2 ms of the worker's own time, and the parent's wake-up after each result
preempted a worker for up to 9 ms; a step sends sixteen tasks. A POSIX
semaphore post and wait (``multiprocessing.Semaphore``) takes 7.5 µs for the
same round trip to two workers (10.5 µs on CPython). So on the hot path
nothing is pickled and no pipe is touched:

- the parent writes a task's numbers into the worker's **task ring** and posts
  the worker's semaphore (the doorbell);
- the worker writes its result's numbers into its **result ring**, counts it in
  the ring's header and posts the parent's semaphore, which every worker
  shares (one wait in the parent covers them all).

A record is ``[kind, n_ints, n_floats, ints..., floats...]`` in 8-byte words.
:data:`CODECS` turns each type of :mod:`~paracnn.parallel.protocol` into ints
and floats and back. An object without a codec, or too large for a record,
travels pickled through the worker's pipe instead (kind :data:`PIPE` says
so), and so does a failed task's traceback; the worker's ``Ready`` and the
parent's ``Stop`` take the pipe too. A ring holds :data:`CAPACITY` records,
more than the tasks the scheduler keeps in flight per worker, so a record is
never overwritten before it is read.
"""

import struct
from array import array

from .protocol import (EvalResult, EvalTask, ReduceResult, ReduceTask, TrainResult, TrainTask,
                       UpdateResult, UpdateTask)

#: records per ring: at least the deepest queue the scheduler keeps per worker.
CAPACITY = 4

#: the largest number of indices, predictions or losses one record carries; a larger
#: task or result takes the pipe (an evaluation chunk of a user's ``eval_batch``, say).
MAX_ITEMS = 4096

#: words before a record's numbers: kind, count of ints, count of floats.
HEADER = 3

#: record kinds besides the codecs': nothing yet, and "read the pipe".
EMPTY, PIPE = 0, 1

_WORD = struct.Struct("q")


def _train_task(t, splits):
    return [t.id, t.version, splits.index(t.split), t.seed, t.epoch, t.slot, *t.indices], ()


def _eval_task(t, splits):
    head = [t.id, t.version, splits.index(t.split)]
    r = t.indices
    if isinstance(r, range):  # NOTE: evaluation chunks are ranges: three numbers, whatever their length
        return head + [1, r.start, r.stop, r.step], ()
    return head + [0, *r], ()


def _reduce_task(t, splits):
    return [t.id, t.count, t.lo, t.hi, t.done], (t.samples,)


def _update_task(t, splits):
    count = -1 if t.count is None else t.count
    scaled = t.scale is not None
    return ([t.id, t.version, count, t.lo, t.hi, t.step, t.done, scaled],
            (t.samples, t.lr, t.scale if scaled else 0.0))


def _train_task_back(i, f, splits):
    return TrainTask(i[0], i[1], splits[i[2]], i[3], i[4], i[6:], i[5])


def _eval_task_back(i, f, splits):
    indices = range(i[4], i[5], i[6]) if i[3] else i[4:]
    return EvalTask(i[0], i[1], splits[i[2]], indices)


def _reduce_task_back(i, f, splits):
    return ReduceTask(i[0], i[1], f[0], i[2], i[3], i[4])


def _update_task_back(i, f, splits):
    return UpdateTask(i[0], i[1], None if i[2] < 0 else i[2], f[0], i[3], i[4], f[1], i[5],
                      f[2] if i[7] else None, i[6])


def _train_result(r, splits):
    return [r.correct], (r.loss_sum, r.busy, r.shm_read, r.shm_write, r.finished)


def _eval_result(r, splits):
    return r.preds, (r.busy, r.finished, *r.losses)


def _reduce_result(r, splits):
    return [r.finite], (r.busy, r.finished)


def _update_result(r, splits):
    return [r.grad_finite, r.weights_finite], (r.busy, r.reduce, r.shm_read, r.shm_write, r.finished)


def _train_result_back(i, f, splits):
    return TrainResult(f[0], i[0], f[1], f[2], f[3], f[4])


def _eval_result_back(i, f, splits):
    return EvalResult(f[2:], i, f[0], f[1])


def _reduce_result_back(i, f, splits):
    return ReduceResult(bool(i[0]), f[0], f[1])


def _update_result_back(i, f, splits):
    return UpdateResult(bool(i[0]), bool(i[1]), f[0], f[1], f[2], f[3], f[4])


#: ``type: (kind, encode(obj, splits) -> (ints, floats), decode(ints, floats, splits) -> obj)``.
CODECS = {
    TrainTask: (2, _train_task, _train_task_back),
    EvalTask: (3, _eval_task, _eval_task_back),
    ReduceTask: (4, _reduce_task, _reduce_task_back),
    UpdateTask: (5, _update_task, _update_task_back),
    TrainResult: (6, _train_result, _train_result_back),
    EvalResult: (7, _eval_result, _eval_result_back),
    ReduceResult: (8, _reduce_result, _reduce_result_back),
    UpdateResult: (9, _update_result, _update_result_back),
}
_DECODERS = {kind: back for kind, _, back in CODECS.values()}


class Ring:
    """:data:`CAPACITY` records of one direction of one worker's mailbox, over shared memory.

    Args:
        view: a ``'B'`` memoryview of :meth:`nbytes` bytes (a slice of the pool's control block).
        splits: the dataset split names, in the order both sides encode them.
        items: the most indices (or predictions) a record carries, up to :data:`MAX_ITEMS`.
    """

    def __init__(self, view, splits, items):
        self.view, self.splits = view, tuple(splits)
        self.words = self.record_words(items)
        self.items = items

    @staticmethod
    def record_words(items):
        """Words per record: the header, ``items`` plus room for a task's or result's fixed fields."""
        return HEADER + 2 * (min(items, MAX_ITEMS) + 16)

    @classmethod
    def nbytes(cls, items):
        return 8 * CAPACITY * cls.record_words(items)

    def write(self, n, obj):
        """Write ``obj`` as record ``n`` (modulo :data:`CAPACITY`); False if it must take the pipe."""
        base = 8 * (n % CAPACITY) * self.words
        codec = CODECS.get(type(obj))
        encoded = None
        if codec is not None:
            try:
                ints, floats = codec[1](obj, self.splits)
                if len(ints) + len(floats) <= self.words - HEADER:
                    encoded = array("q", ints), array("d", floats)
            except (OverflowError, ValueError, TypeError):  # NOTE: a seed past 2**63, an unknown split
                encoded = None
        view = self.view
        if encoded is None:
            view[base:base + 8] = _WORD.pack(PIPE)
            return False
        ints, floats = encoded
        header = array("q", (codec[0], len(ints), len(floats)))
        start = base + 8 * HEADER
        mid = start + 8 * len(ints)
        view[base:start] = memoryview(header).cast("B")
        view[start:mid] = memoryview(ints).cast("B")
        view[mid:mid + 8 * len(floats)] = memoryview(floats).cast("B")
        return True

    def read(self, n):
        """Record ``n`` as the object it encodes, :data:`PIPE` when the object took the pipe,
        or None when nothing was ever written there."""
        base = 8 * (n % CAPACITY) * self.words
        view = self.view
        header = array("q")
        header.frombytes(view[base:base + 8 * HEADER])
        kind, n_ints, n_floats = header
        if kind == PIPE:
            return PIPE
        if kind == EMPTY:
            return None
        ints, floats = array("q"), array("d")
        start = base + 8 * HEADER
        mid = start + 8 * n_ints
        ints.frombytes(view[start:mid])
        floats.frombytes(view[mid:mid + 8 * n_floats])
        return _DECODERS[kind](ints.tolist(), floats.tolist(), self.splits)


class Mailbox:
    """One worker's task ring, result ring and result counter, over one slice of shared memory.

    The counter (the first word) is the number of results the worker has
    written; only the worker writes it, after the record, so a reader that
    sees the count sees the record.
    """

    def __init__(self, view, splits, items):
        ring = Ring.nbytes(items)
        self.view = view
        self.counter = view[:8].cast("q")
        self.tasks = Ring(view[8:8 + ring], splits, items)
        self.results = Ring(view[8 + ring:8 + 2 * ring], splits, items)

    @staticmethod
    def nbytes(items):
        return 8 + 2 * Ring.nbytes(items)

    def reset(self):
        """Zero the counter and forget every record (for a fresh worker at this position)."""
        self.view[:] = bytes(len(self.view))

    def release(self):
        for v in (self.counter, self.tasks.view, self.results.view, self.view):
            v.release()
