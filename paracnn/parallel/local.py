"""The backends of one machine: in this process, or a pool of worker processes over shared memory.

A backend only runs tasks of :mod:`~paracnn.parallel.protocol` and reports
deaths (by replacing the worker, or by raising
:class:`~paracnn.parallel.failures.WorkerError`); the
:class:`~paracnn.parallel.engine.Engine` decides what to run. Every backend
offers:

- ``compute``: this process's :class:`~paracnn.parallel.tasks.Compute`, over
  the buffers of :class:`~paracnn.parallel.layout.SharedLayout` (the engine
  reads and publishes the state through it, and runs the reduction and the
  update on it when they are not sliced);
- ``datasets``: ``{split: ImageSet}`` as this process sees them;
- ``run(tasks, on_idle=None, depth=None, should_stop=None)``: the results
  by task id (see :meth:`WorkerPool.run <paracnn.parallel.pool.WorkerPool.run>`);
- ``sliced``: True when reduce and update tasks go to the workers, slice by slice;
- ``broadcast``: seconds the last ``run`` spent publishing weights (0 here:
  every process reads them from shared memory);
- ``size``, ``tail_idle``, ``pool``, ``start_method``, ``pids()``, ``close()``.
"""

import gc
import platform

from ..errors import TaskError
from .datasets import share_datasets
from .layout import SharedLayout
from .pool import WorkerPool
from .protocol import run_task
from .shm import create_block, release_block
from .worker import WorkerSetup, describe_failure

_PYPY = platform.python_implementation() == "PyPy"


class InProcess:
    """``--workers 0``: every task runs here, one after another, over private buffers."""

    sliced = False
    size = 0
    tail_idle = broadcast = 0.0
    pool = None
    start_method = None
    same_clock = True
    cores = None

    def __init__(self, model, datasets, layout, optimizer):
        self.datasets = dict(datasets)
        self.compute = layout.private_compute(model, self.datasets, optimizer)
        self.read_at = []

    def run(self, tasks, on_idle=None, depth=None, should_stop=None):
        compute, results = self.compute, [None] * len(tasks)
        for k, task in enumerate(tasks):
            if should_stop is not None and should_stop():
                break
            try:
                results[k] = run_task(compute, task)
            except Exception as e:
                # NOTE: reported like a worker's failure: the layer's name first; --debug shows e.
                raise TaskError(describe_failure(e, compute.model)) from e
        # NOTE: each result is read the moment it is made: no result waits here.
        self.read_at = [None if r is None else r.finished for r in results]
        return results

    def pids(self):
        return []

    def close(self):
        pass


class LocalPool:
    """``--workers N``: N processes of a :class:`WorkerPool` over shared memory.

    The weights, the optimiser's buffers (momentum, Adam's moments), gradient
    slots and the datasets' bytes live in shared blocks, written once by this
    process; tasks carry indices only.

    With two or more workers, the rest of the step runs in the workers too: each
    "update" task adds one slice of the parameter vector over all slots, applies
    the optimiser to that slice and writes the new weights and buffers into
    shared memory (a reduce-scatter with the update fused in). The parent's
    serial work per step is then a few small messages, not passes over every
    parameter. The weights and buffers are **double-buffered**: step ``v`` reads
    buffer ``v % 2`` and writes the other, and the parent publishes version
    ``v + 1`` only once every slice is done and finite, so a worker that dies
    mid-update has its slice recomputed to the same bits, and a NaN leaves the
    last good weights in place.
    (From two workers on: one worker would only do the parent's work plus
    the round trips.)

    Args:
        workers, start_method, max_failures, log, task_timeout, items: see :class:`WorkerPool`.
    """

    broadcast = 0.0
    same_clock = True

    def __init__(self, model, datasets, layout, optimizer, *, workers, start_method=None,
                 max_failures=3, log=None, task_timeout=None, items=256):
        self.size = workers
        self.sliced = True
        self.pool = self.compute = None
        self.datasets = {}
        self._blocks = []
        try:
            state_block = create_block(layout.state_bytes)
            self._blocks.append(state_block)
            grads_block = create_block(layout.grads_bytes)
            self._blocks.append(grads_block)
            handles, self.datasets, data_blocks = share_datasets(datasets)
            self._blocks += data_blocks
            # NOTE: the parent's own view of the same memory, for work not worth a round trip.
            self.compute = layout.compute(model, state_block.buf, grads_block.buf, {}, optimizer)
            setup = WorkerSetup(model, state_block.name, grads_block.name, layout, handles, optimizer)
            if _PYPY:
                # NOTE: forked workers inherit the parent's heap, garbage included (the
                # dataset's decompression buffers), and PyPy sizes a process's next major
                # collection from its heap: collecting first keeps every worker smaller.
                gc.collect()
            self.pool = WorkerPool(setup, workers, start_method, max_failures, log, task_timeout,
                                   items=items, splits=tuple(datasets))
        except BaseException:
            self.close()
            raise
        self.start_method = self.pool.start_method

    @property
    def tail_idle(self):
        return self.pool.tail_idle

    @property
    def read_at(self):
        return self.pool.read_at

    @property
    def cores(self):
        return self.pool.cores

    def run(self, tasks, on_idle=None, depth=None, should_stop=None):
        return self.pool.run(tasks, on_idle, depth, should_stop=should_stop)

    def pids(self):
        return self.pool.pids() if self.pool is not None else []

    def close(self):
        """Stop the workers, then release the views and unlink every block. Idempotent."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.compute is not None:
            SharedLayout.release(self.compute)
            self.compute = None
        for ds in self.datasets.values():
            for view in (ds.images, ds.labels):
                if isinstance(view, memoryview):
                    view.release()
        self.datasets = {}
        blocks, self._blocks = self._blocks, []
        for block in blocks:
            release_block(block, unlink=True)
