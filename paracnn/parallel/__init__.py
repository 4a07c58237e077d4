"""Parallel gradient computation: one engine, and backends that run its tasks.

In the order a step passes through it:

- :mod:`~paracnn.parallel.engine`: :class:`Engine`, the entry point; it cuts a
  mini-batch into fixed micro-batches (:mod:`~paracnn.parallel.plan`), has a
  backend run them, sums their gradients in slot order
  (:mod:`~paracnn.parallel.reduction`), clips, updates and checks the result.
- :mod:`~paracnn.parallel.protocol`: the named tasks and results, and the one
  dispatch table every backend uses.
- :mod:`~paracnn.parallel.scheduler`: the one dispatch loop, and the
  :class:`~paracnn.parallel.scheduler.Backend` seam every backend fills in.
- :mod:`~paracnn.parallel.local`: the backends of one machine, in-process or
  a :class:`WorkerPool` (:mod:`~paracnn.parallel.pool`, processes with
  shared-memory mailboxes and semaphores, :mod:`~paracnn.parallel.mailbox`;
  :mod:`~paracnn.parallel.worker`, the worker loop;
  :mod:`~paracnn.parallel.failures`, how a failure is reported)
  over shared memory (:mod:`~paracnn.parallel.layout`,
  :mod:`~paracnn.parallel.shm`, :mod:`~paracnn.parallel.datasets`).
- :mod:`~paracnn.parallel.ray_backend`: Ray actors across machines (needs
  ``pip install "paracnn[ray]"``; ``ray`` is imported only when used), chosen by
  :mod:`~paracnn.parallel.ray_spec`; :mod:`~paracnn.parallel.ray_actor` is the Ray side.
- :mod:`~paracnn.parallel.tasks`: :class:`~paracnn.parallel.tasks.Compute`, the
  work itself, the same in every process.
"""

from .engine import Engine, EvaluationStopped
from .plan import auto_micro_batch, micro_batches
from .failures import WorkerError, WorkerTaskError
from .pool import WorkerPool
from .tasks import sample_seed

__all__ = ["Engine", "EvaluationStopped", "WorkerError", "WorkerPool", "WorkerTaskError",
           "auto_micro_batch", "micro_batches", "sample_seed"]
