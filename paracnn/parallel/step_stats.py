"""The record of one optimiser step: what it computed and where its time went.

:meth:`Engine.step <paracnn.parallel.Engine.step>` makes one per step, the
Trainer adds the step's learning rate and wall time, and the Run adds steps up
(``a + b``) into the running totals of an epoch and of a ``steps.jsonl``
window, which become the ``*_seconds`` columns of ``metrics.jsonl``. The field
names are the keys of a mid-epoch checkpoint's ``progress``, so the figures
keep one name from the engine to the files.

Seconds are the parent's wall-clock seconds unless said::

    compute        worker compute: the busy seconds measured inside the workers,
                   summed and divided by the number of workers (in-process: the
                   compute time itself)
    wait           the rest of the gradient phase: waiting for the slowest
                   worker, hand-overs and scheduling (gradient wall - compute - broadcast)
    tail           the part of ``wait`` a worker sat idle after its last
                   micro-batch while another finished, averaged over the workers
    broadcast      Ray only: putting the weights into Ray's object store, once
                   per step; always 0 on the local backend, whose workers read
                   the weights from shared memory (nothing is broadcast)
    reduce_update  summing the micro-batch gradients, clipping, the optimiser
    presum         the part of ``wait`` the parent spent summing finished slots
                   while a worker idled (not part of ``reduce_update``)
    seconds        the whole step, as the Trainer timed it

Where the fixed cost of a step (``seconds - compute``) goes, for ``paracnn
profile``; per worker (summed over the workers' tasks, divided by their number)::

    result_wait    the last micro-batch's result waited, finished, before the
                   parent read it (part of ``wait``; earlier results wait while
                   their worker goes on; 0 where the clocks differ, as on Ray)
    reduce         summing the gradient slots (part of ``reduce_update``)
    update         the optimiser's arithmetic (part of ``reduce_update``)
    shm_io         the update reading and writing weights and buffers in
                   shared memory (part of ``reduce_update``)

and, inside ``compute`` (the serial step does the same)::

    load_weights   copying a new weight version into the model
    store_grads    writing a micro-batch's gradient into its slot

The rest of the fixed cost is handing out tasks, waking workers and the
parent's own bookkeeping.
"""

from dataclasses import asdict, dataclass
from typing import Optional

#: the fields that add up over steps.
SUMMED = ("samples", "loss_sum", "correct", "slots", "compute", "wait", "tail", "broadcast",
          "reduce_update", "presum", "seconds", "result_wait", "reduce", "update", "shm_io",
          "load_weights", "store_grads")
#: the fields that describe the latest step (a sum keeps the later one's, unless it is None).
LATEST = ("lr", "diverged", "grad_norm")


@dataclass
class StepStats:
    """One step's figures, or the sum of several steps' (``a + b``).

    A sum adds the :data:`SUMMED` fields and keeps the later step's ``lr``,
    ``diverged`` and ``grad_norm``; ``StepStats()`` is the empty sum.

    Attributes:
        samples, loss_sum, correct: training samples, the sum of their losses,
            and how many the forward pass classified right.
        slots: micro-batches (gradient slots) used.
        compute, wait, tail, broadcast, reduce_update, presum, seconds, result_wait,
            reduce, update, shm_io, load_weights, store_grads: see the module docstring.
        lr: the learning rate of the (latest) step; None before the Trainer sets it.
        diverged: None, or ``"loss"``, ``"gradient"`` or ``"weights"``: what was
            not finite (then the step was not published).
        grad_norm: the mean gradient's norm (only when clipping computed it).
    """

    samples: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    slots: int = 0
    compute: float = 0.0
    wait: float = 0.0
    tail: float = 0.0
    broadcast: float = 0.0
    reduce_update: float = 0.0
    presum: float = 0.0
    seconds: float = 0.0
    result_wait: float = 0.0
    reduce: float = 0.0
    update: float = 0.0
    shm_io: float = 0.0
    load_weights: float = 0.0
    store_grads: float = 0.0
    lr: Optional[float] = None
    diverged: Optional[str] = None
    grad_norm: Optional[float] = None

    def __add__(self, other):
        if not isinstance(other, StepStats):
            return NotImplemented
        out = StepStats(**{name: getattr(self, name) + getattr(other, name) for name in SUMMED})
        for name in LATEST:
            later = getattr(other, name)
            setattr(out, name, later if later is not None else getattr(self, name))
        return out

    @property
    def wall(self):
        """Seconds of the gradient phase: dispatch to the last result (``compute + wait + broadcast``)."""
        return self.compute + self.wait + self.broadcast

    def as_dict(self):
        """The fields as a plain dict (for tables and pipes)."""
        return asdict(self)
