"""The process protocol: one named type per task and per result, and one dispatch table.

Every backend (in-process, the local worker pool, Ray actors) hands the same
task objects to :func:`run_task`, which looks the handler up in
:data:`HANDLERS`; nothing else branches on the kind of a task. The types are
``NamedTuple``: they pickle as compactly as the plain tuples they replace (a
step sends a few dozen of them), and a field is read by name.

Tasks (``id`` is the task's index in its batch, ``0..n-1``)::

    TrainTask   gradient sum of ``indices`` into gradient slot ``slot``
    EvalTask    losses and predicted classes of ``indices``
    ReduceTask  elements ``lo:hi`` of the mean of slots ``0..count-1``
    UpdateTask  optimiser step ``step`` (1-based) on elements ``lo:hi``
                (``count`` None: from the mean a reduce pass left)

The local pool's own messages, worker to parent: :class:`Ready` and
:class:`Failed`; parent to worker: :class:`Stop`. Tasks and results cross
through shared memory there (:mod:`~paracnn.parallel.mailbox`).
"""

from typing import List, NamedTuple, Optional, Sequence


class TrainTask(NamedTuple):
    id: int
    version: int
    split: str
    seed: int
    epoch: int
    indices: Sequence[int]
    slot: int


class EvalTask(NamedTuple):
    id: int
    version: int
    split: str
    indices: Sequence[int]


class ReduceTask(NamedTuple):
    id: int
    count: int
    samples: float
    lo: int
    hi: int
    done: int = 0


class UpdateTask(NamedTuple):
    id: int
    version: int
    count: Optional[int]
    samples: float
    lo: int
    hi: int
    lr: float
    step: int
    scale: Optional[float] = None
    done: int = 0


class TrainResult(NamedTuple):
    """A micro-batch's loss sum and correct count. Seconds: ``busy`` the whole task,
    ``shm_read`` of it loading a new weight version, ``shm_write`` storing the gradient
    slot; ``finished`` is the worker's ``time.monotonic()`` at the end (one clock for
    every process of a machine: the parent's reading time minus it is how long the
    result waited)."""

    loss_sum: float
    correct: int
    busy: float
    shm_read: float = 0.0
    shm_write: float = 0.0
    finished: float = 0.0


class EvalResult(NamedTuple):
    losses: List[float]
    preds: List[int]
    busy: float
    finished: float = 0.0


class ReduceResult(NamedTuple):
    finite: bool
    busy: float
    finished: float = 0.0


class UpdateResult(NamedTuple):
    """Seconds: ``busy`` the whole task, ``reduce`` summing the slots, ``shm_read`` and
    ``shm_write`` moving the weights and buffers; the rest of ``busy`` is the optimiser."""

    grad_finite: bool
    weights_finite: bool
    busy: float
    reduce: float = 0.0
    shm_read: float = 0.0
    shm_write: float = 0.0
    finished: float = 0.0


class Stop(NamedTuple):
    """Parent to worker: finish now."""


class Ready(NamedTuple):
    """Worker to parent, once, after attaching to shared memory."""

    pid: int


class Failed(NamedTuple):
    """The task raised. Only text crosses the pipe: the exception itself may not pickle.

    ``summary`` is one line naming the layer (see :func:`~paracnn.parallel.worker.describe_failure`).
    """

    id: int
    traceback: str
    summary: str


def _train(compute, task):
    return compute.train(task)


def _evaluate(compute, task):
    return compute.evaluate(task)


def _reduce(compute, task):
    return compute.reduce(task)


def _update(compute, task):
    return compute.update(task)


#: the handler of each task type: ``handler(compute, task) -> result``.
HANDLERS = {TrainTask: _train, EvalTask: _evaluate, ReduceTask: _reduce, UpdateTask: _update}


def run_task(compute, task):
    """Run ``task`` on ``compute`` (a :class:`~paracnn.parallel.tasks.Compute`); its result."""
    handler = HANDLERS.get(type(task))
    if handler is None:
        raise ValueError(f"unknown task {type(task).__name__}")
    return handler(compute, task)
