"""Parallel gradient computation: a worker pool over shared-memory weights and data.

- :mod:`~paracnn.parallel.engine`: :class:`Engine`, the entry point; it cuts a
  mini-batch into fixed micro-batches and sums their gradients in a fixed order.
- :mod:`~paracnn.parallel.pool`: :class:`WorkerPool`, processes and pipes, dead
  worker detection and replacement.
- :mod:`~paracnn.parallel.worker`: the worker process loop.
- :mod:`~paracnn.parallel.tasks`: the per-micro-batch computation shared by the
  workers and the in-process path.
- :mod:`~paracnn.parallel.shm`, :mod:`~paracnn.parallel.datasets`: shared memory.
"""

from .engine import Engine, EvaluationStopped, auto_micro_batch, micro_batches
from .pool import WorkerError, WorkerPool, WorkerTaskError
from .tasks import sample_seed

__all__ = ["Engine", "EvaluationStopped", "WorkerError", "WorkerPool", "WorkerTaskError",
           "auto_micro_batch", "micro_batches", "sample_seed"]
