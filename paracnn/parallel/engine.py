"""The Engine: mini-batch gradients and evaluation, in-process or over a worker pool.

A mini-batch of ``B`` sample indices is cut into micro-batches of a fixed size
``M`` (``train.micro_batch``; by default ``ceil(B / 8)`` clamped to 1..32),
**whatever the number of workers**. Micro-batch ``k`` writes its gradient sum
into slot ``k``; the slots are then added in slot order::

    grad = ((slot0 + slot1) + slot2) + ...      then  grad / B

so ``--workers 0``, ``1``, ``2`` or ``4`` perform the very same floating-point
operations in the same order and reach bit-identical weights. With workers,
that sum is a reduce-scatter: each "reduce" task adds one slice of the vector
over all slots and writes it to a shared mean vector, so the parent's serial
work per step is a copy, not ``slots`` passes over every parameter.

With ``workers == 0`` everything runs in this process over plain arrays.
Otherwise the weights (one float64 vector), the gradient slots and the
datasets' bytes live in shared memory, written once by the parent; tasks carry
sample indices only.
"""

import math
import time
from array import array

from ..errors import TaskError
from .datasets import share_datasets
from .pool import WorkerPool
from .shm import create_block, doubles, release_block
from .tasks import Compute, mean_of_slots
from .worker import WorkerSetup, describe_failure

#: the largest evaluation chunk when ``train.eval_batch`` is null.
EVAL_CHUNK = 256

#: the smallest slice of the parameter vector one "reduce" task adds up.
REDUCE_SLICE = 2048


def auto_micro_batch(batch_size):
    """The default micro-batch size: eight micro-batches per step, 1 to 32 samples each."""
    return max(1, min(32, math.ceil(batch_size / 8)))


def micro_batches(indices, size):
    """``indices`` cut into consecutive chunks of ``size`` (the last may be shorter)."""
    return [indices[i:i + size] for i in range(0, len(indices), size)]


class Engine:
    """Computes averaged mini-batch gradients and evaluations for a model.

    Args:
        model: a built :class:`~paracnn.model.Sequential` (its weights are not used:
            call :meth:`set_weights`).
        datasets: ``{split: ImageSet}``; they are moved into shared memory when
            ``workers > 0`` (use :attr:`datasets` afterwards).
        workers: 0 for in-process, else the number of worker processes.
        batch_size: the largest mini-batch :meth:`gradient` will get.
        micro_batch: samples per task; None for :func:`auto_micro_batch`.
        eval_batch: samples per evaluation task; None for a sixteenth of the
            split, at most :data:`EVAL_CHUNK` (the results do not depend on it).
        seed: the run seed, from which per-sample seeds derive.
        start_method, max_failures, log, task_timeout: see
            :class:`~paracnn.parallel.pool.WorkerPool`.

    Example::

        with Engine(model, {"train": ds}, workers=2, batch_size=64) as engine:
            engine.set_weights(model.get_weights())
            step = engine.gradient(indices, epoch=0)
    """

    def __init__(self, model, datasets, *, workers=0, batch_size=64, micro_batch=None,
                 eval_batch=None, seed=0, start_method=None, max_failures=3, log=None,
                 task_timeout=None):
        self.num_params = p = model.num_params()
        self.workers = workers
        self.seed = seed
        self.micro_batch = micro_batch or auto_micro_batch(batch_size)
        self.eval_batch = eval_batch
        self.slots = math.ceil(batch_size / self.micro_batch)
        self.version = 0
        self.pool = None
        self.params = self.grads = self.mean = None
        # NOTE: up to four slices per worker, so a worker slowed by the host does not hold the rest.
        n = max(1, min(4 * workers, math.ceil(p / REDUCE_SLICE)))
        self.reduce_slices = [(p * i // n, p * (i + 1) // n) for i in range(n)]
        self._blocks = []
        if workers == 0:
            self.params = array("d", bytes(8 * p))
            self.grads = array("d", bytes(8 * p * self.slots))
            self.datasets = dict(datasets)
            self.compute = Compute(model, self.params, self.grads, self.datasets)
            return
        try:
            params_block, grads_block = create_block(8 * p), create_block(8 * p * (self.slots + 1))
            self._blocks += [params_block, grads_block]
            handles, self.datasets, data_blocks = share_datasets(datasets)
            self._blocks += data_blocks
            self.params = doubles(params_block, p)
            self.grads = doubles(grads_block, p * self.slots)
            self.mean = doubles(grads_block, p, offset=p * self.slots)
            setup = WorkerSetup(model, params_block.name, grads_block.name, self.slots, handles)
            self.pool = WorkerPool(setup, workers, start_method, max_failures, log, task_timeout)
        except BaseException:
            self.close()
            raise

    def worker_pids(self):
        return self.pool.pids() if self.pool else []

    def set_weights(self, weights):
        """Publish ``weights`` (a list or array of floats) for the next tasks; return seconds taken."""
        start = time.perf_counter()
        self.params[:] = weights if isinstance(weights, array) else array("d", weights)
        self.version += 1
        return time.perf_counter() - start

    def _run(self, tasks):
        if self.pool is None:
            compute = self.compute
            try:
                return [compute.train(*t[2:]) if t[0] == "train" else compute.evaluate(*t[2:])
                        for t in tasks]
            except Exception as e:
                # NOTE: reported like a worker's failure: the layer's name first; --debug shows e.
                raise TaskError(describe_failure(e, compute.model)) from e
        return self.pool.run(tasks)

    def gradient(self, indices, epoch, split="train"):
        """The mean gradient over ``indices`` at the published weights.

        Returns a dict: ``grad`` (list of floats), ``loss_sum``, ``correct``,
        ``samples``, ``wall`` (seconds from dispatch to the last result),
        ``busy`` (worker compute seconds, summed) and ``reduce`` (seconds).
        """
        indices = list(indices)
        chunks = micro_batches(indices, self.micro_batch)
        if len(chunks) > self.slots:
            raise ValueError(f"a batch of {len(indices)} needs {len(chunks)} gradient slots, "
                             f"the engine has {self.slots}")
        tasks = [("train", k, self.version, split, self.seed, epoch, chunk, k)
                 for k, chunk in enumerate(chunks)]
        start = time.perf_counter()
        results = self._run(tasks)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        grad = self._mean_gradient(len(chunks), float(len(indices)))
        loss_sum = 0.0
        for r in results:
            loss_sum += r[0]
        return {"grad": grad, "loss_sum": loss_sum, "correct": sum(r[1] for r in results),
                "samples": len(indices), "wall": wall, "busy": sum(r[2] for r in results),
                "reduce": time.perf_counter() - start}

    def _mean_gradient(self, count, samples):
        """The mean of slots ``0..count-1`` as a list: in the workers by slices, or in-process."""
        if self.pool is None or self.workers == 1:
            # NOTE: one worker would do the same work as the parent, plus the round trips.
            return mean_of_slots(self.grads, self.num_params, count, samples, 0, self.num_params)
        self.pool.run([("reduce", k, count, samples, lo, hi)
                       for k, (lo, hi) in enumerate(self.reduce_slices)])
        return self.mean.tolist()

    def evaluate(self, split):
        """Inference over the whole ``split`` at the published weights.

        Returns ``(loss_sum, predictions, busy_seconds)``, predictions in sample
        order. The loss sum is ``math.fsum`` of the per-sample losses, exactly
        rounded, so it does not depend on how the split was chunked.
        """
        n = len(self.datasets[split])
        size = self.eval_batch or max(1, min(EVAL_CHUNK, math.ceil(n / 16)))
        tasks = [("eval", k, self.version, split, range(a, min(n, a + size)))
                 for k, a in enumerate(range(0, n, size))]
        losses, preds, busy = [], [], 0.0
        for r in self._run(tasks):
            losses += r[0]
            preds += r[1]
            busy += r[2]
        return math.fsum(losses), preds, busy

    def close(self):
        """Stop the workers and free every shared block. Idempotent."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._blocks:
            _release_views(self.params, self.grads, self.mean)
            for ds in self.datasets.values():
                _release_views(ds.images, ds.labels)
            self.params = self.grads = self.mean = None
            self.datasets = {}
            blocks, self._blocks = self._blocks, []
            for block in blocks:
                release_block(block, unlink=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _release_views(*views):
    for view in views:
        if isinstance(view, memoryview):
            view.release()
