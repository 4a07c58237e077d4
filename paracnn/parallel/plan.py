"""How work is cut up: micro-batches of a step, slices of the parameter vector, evaluation chunks.

Only the micro-batches change the arithmetic (each is one gradient slot,
and the slots are added in slot order); the slices and the chunks only
spread work, so their sizes are tuning, measured on LeNet-5 below.
"""

import math
import os

#: the largest evaluation chunk when ``train.eval_batch`` is null.
EVAL_CHUNK = 256

#: evaluation chunks per split by default (each at most :data:`EVAL_CHUNK` samples).
EVAL_CHUNKS = 16

#: the smallest slice of the parameter vector one "reduce" or "update" task works on.
REDUCE_SLICE = 2048

#: slices per worker. One: under PyPy a LeNet-5 slice of 22,213 weights takes 0.3 ms to
#: reduce and update, about two hand-overs' worth, so more slices cost more than the
#: balance they buy (2 workers, quiet host: reduce+update 1.6 ms at one slice per worker,
#: 2.2 ms at two, 3.1 ms at four).
SLICES_PER_WORKER = 1

#: micro-batches that took longer than this (seconds, the last step's mean) are handed
#: out one per worker at a time: a round trip between tasks then costs well under 1 %,
#: and the last micro-batches go to whichever worker frees up first. (Queueing a second
#: one except for the last ``workers`` measured no better on LeNet-5: it saves 0.1 to
#: 0.3 ms of round trips per step, and a worker the host slows keeps its queued one.)
LONG_TASK = 0.02

#: micro-batches per step by default, each of 1 to :data:`MAX_AUTO_MICRO_BATCH` samples.
AUTO_MICRO_BATCHES = 8
MAX_AUTO_MICRO_BATCH = 32


def auto_micro_batch(batch_size):
    """The default micro-batch size: eight micro-batches per step, 1 to 32 samples each."""
    return max(1, min(MAX_AUTO_MICRO_BATCH, math.ceil(batch_size / AUTO_MICRO_BATCHES)))


def micro_batches(indices, size):
    """``indices`` cut into consecutive chunks of ``size`` (the last may be shorter)."""
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def reduce_slices(num_params, workers, cpus=None):
    """``(lo, hi)`` slices of ``0:num_params`` for the reduce and update tasks of ``workers``.

    Contiguous and in order; one slice of the whole vector for ``workers`` 0.
    Workers beyond ``cpus`` (the CPUs this process may use, when given) add no
    slices: they could not run at once, and each hand-over to a worker that
    must first be scheduled costs more than its slice (8 workers on 2 CPUs:
    handing out 8 update tasks took 1.6 ms, the tasks 0.4 ms each).
    """
    if cpus:
        workers = min(workers, cpus)
    n = max(1, min(SLICES_PER_WORKER * workers, math.ceil(num_params / REDUCE_SLICE)))
    return [(num_params * i // n, num_params * (i + 1) // n) for i in range(n)]


def affinity_cpus():
    """The CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``).

    NOTE: the pool's limit on busy workers counts these, not a cgroup quota: a quota
    throttles the processes but they still run side by side on every CPU of the affinity.
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def eval_chunks(n, eval_batch=None):
    """Ranges covering ``0..n-1`` of ``eval_batch`` samples, or by default a sixteenth of
    ``n`` at most :data:`EVAL_CHUNK` (the results do not depend on the size)."""
    size = eval_batch or max(1, min(EVAL_CHUNK, math.ceil(n / EVAL_CHUNKS)))
    return [range(a, min(n, a + size)) for a in range(0, n, size)]
