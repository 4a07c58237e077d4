"""The Engine: mini-batch gradients, optimiser steps and evaluation, whatever runs the tasks.

A mini-batch of ``B`` sample indices is cut into micro-batches of a fixed size
``M`` (``train.micro_batch``; by default ``ceil(B / 8)`` clamped to 1..32),
**whatever the number of workers**. Micro-batch ``k`` writes its gradient sum
into slot ``k``; the slots are then added in slot order::

    grad = ((slot0 + slot1) + slot2) + ...      then  grad / B

so ``--workers 0``, ``1``, ``2`` or ``4`` perform the very same floating-point
operations in the same order and reach bit-identical weights.

Where tasks run is the backend's business (:mod:`~paracnn.parallel.local`: in-process or a
shared-memory worker pool, whose workers also reduce and update by slices;
:mod:`~paracnn.parallel.ray_backend`: Ray actors). The rest is here, the same for all:
micro-batches, the slot-order reduction, clipping and the update (sliced in the workers, or on
this process's ``Compute``), the divergence check (the new version is published only when all is
finite), evaluation chunks, and the published state.
"""

import math
import time

from ..errors import ParacnnError
from ..optim import SGD, clip_coef, grad_norm
from .layout import DOUBLE, SharedLayout, as_doubles
from .local import InProcess, LocalPool
from . import plan
from .plan import auto_micro_batch, eval_chunks, micro_batches, reduce_slices
from .protocol import EvalTask, ReduceTask, TrainTask, UpdateResult, UpdateTask, run_task
from .reduction import TailSums, all_finite
from .step_stats import StepStats


class EvaluationStopped(ParacnnError):
    """:meth:`Engine.evaluate` was told to stop (its ``should_stop`` returned True)."""


class Engine:
    """Computes mini-batch gradients, optimiser steps and evaluations for a model.

    Args:
        model: a built :class:`~paracnn.model.Sequential` (its weights are not used:
            call :meth:`set_state` or :meth:`set_weights`).
        datasets: ``{split: ImageSet}``; the backend may move them (into shared
            memory, or Ray's object store): use :attr:`datasets` afterwards.
        workers: 0 for in-process, else the number of workers.
        batch_size: the largest mini-batch :meth:`step` will get.
        optimizer: the :class:`~paracnn.optim.Optimizer` :meth:`step` applies
            (hyperparameters only; its buffers and step count live here). Default plain SGD.
        micro_batch: samples per task; None for :func:`auto_micro_batch`.
        eval_batch: samples per evaluation task; None for the default of
            :func:`~paracnn.parallel.plan.eval_chunks` (the results do not depend on it).
        seed: the run seed, from which per-sample seeds derive.
        start_method, max_failures, log, task_timeout: see
            :class:`~paracnn.parallel.pool.WorkerPool`.
        backend: None for this machine's worker pool, or a spec whose ``open(model,
            datasets, layout, optimizer, **options)`` starts another (e.g.
            :class:`~paracnn.parallel.ray_spec.RaySpec`). ``workers`` 0 runs in-process.

    Example::

        with Engine(model, {"train": ds}, workers=2, batch_size=64, optimizer=SGD(momentum=0.9)) as e:
            e.set_state(model.get_weights())
            out = e.step(indices, epoch=0, lr=0.05)
    """

    def __init__(self, model, datasets, *, workers=0, batch_size=64, optimizer=None, micro_batch=None,
                 eval_batch=None, seed=0, start_method=None, max_failures=3, log=None,
                 task_timeout=None, backend=None):
        self.num_params = p = model.num_params()
        self.workers = workers
        self.seed = seed
        self.optimizer = optimizer if optimizer is not None else SGD()
        self.micro_batch = micro_batch or auto_micro_batch(batch_size)
        self.eval_batch = eval_batch
        self.slots = math.ceil(batch_size / self.micro_batch)
        self.version = 0
        self.task_seconds = 0.0  # mean busy seconds of the last step's micro-batches
        self._set_at = (0, 0)  # (version, steps) at the last set_state: see steps
        self._closed = None  # after close(): the last weights and buffers, as lists
        layout = SharedLayout(p, self.slots, len(self.optimizer.buffer_names))
        options = dict(workers=workers, max_failures=max_failures, log=log, task_timeout=task_timeout)
        if workers == 0:
            self.backend = InProcess(model, datasets, layout, self.optimizer)
        elif backend is None:
            # NOTE: the mailboxes' records are sized for the largest task of this engine
            items = max(self.micro_batch, eval_batch or plan.EVAL_CHUNK)
            self.backend = LocalPool(model, datasets, layout, self.optimizer, start_method=start_method,
                                     items=items, **options)
        else:
            self.backend = backend.open(model, datasets, layout, self.optimizer, **options)
        self.compute, self.datasets = self.backend.compute, self.backend.datasets
        # NOTE: how many workers compute at once: the scheduler keeps no more busy than the CPUs
        self.parallel = max(1, min(workers, self.backend.cores or workers))
        self.reduce_slices = reduce_slices(p, workers if self.backend.sliced else 0, plan.affinity_cpus())

    @property
    def pool(self):
        """The local :class:`~paracnn.parallel.pool.WorkerPool`, or None (in-process, other backends)."""
        return self.backend.pool

    def worker_pids(self):
        """PIDs of the workers on this machine (for memory and CPU accounting)."""
        return self.backend.pids()

    def set_state(self, weights, buffers=None, steps=0):
        """Publish ``weights``, the optimiser's ``buffers`` and ``steps`` taken; return seconds taken.

        ``buffers``: ``{name in the optimiser's buffer_names: values}`` (missing: zeros). All
        go into the next version, which then becomes current; the next step is ``steps + 1``.
        """
        self._check_open()
        start = time.perf_counter()
        nxt, buffers = self.version + 1, buffers or {}
        if set(buffers) - set(self.optimizer.buffer_names):
            raise ValueError(f"the optimizer keeps only {self.optimizer.buffer_names}, got {sorted(buffers)}")
        self.compute.weights(nxt)[:] = as_doubles(weights, self.num_params, "weights")
        for i, name in enumerate(self.optimizer.buffer_names):
            values = buffers.get(name)
            values = bytes(DOUBLE * self.num_params) if values is None else values
            self.compute.buffer(i, nxt)[:] = as_doubles(values, self.num_params, name)
        self.version, self._set_at = nxt, (nxt, steps)
        return time.perf_counter() - start

    @property
    def steps(self):  # NOTE: derived from version, as the global step is: no signal can split the two
        """Optimiser steps taken: the last update's step number (Adam's ``t``)."""
        return self._set_at[1] + self.version - self._set_at[0]

    def set_weights(self, weights):
        """Publish ``weights`` (a list or array of floats), keeping the optimiser's state; seconds taken."""
        return self.set_state(weights, self.get_buffers(), self.steps)

    def get_weights(self):
        """The current weights, as a list of floats (still available after :meth:`close`)."""
        if self._closed is not None:
            return list(self._closed[0])
        return self.compute.weights(self.version).tolist()

    def get_buffers(self):
        """The optimiser's buffers, ``{name: list of floats}`` (zeros at first); also after :meth:`close`."""
        if self._closed is not None:
            return {name: list(values) for name, values in self._closed[1].items()}
        return {name: self.compute.buffer(i, self.version).tolist()
                for i, name in enumerate(self.optimizer.buffer_names)}

    def _check_open(self):
        if self._closed is not None:
            raise RuntimeError("this Engine is closed: its workers and shared memory are gone")

    def _train(self, indices, epoch, split, tail=None):
        """The micro-batches of ``indices`` into their gradient slots; a :class:`StepStats` of the
        gradient phase (``tail``: a :class:`TailSums` for idle workers)."""
        self._check_open()
        if not indices:
            raise ValueError("a step needs at least one sample index")
        chunks = micro_batches(indices, self.micro_batch)
        if len(chunks) > self.slots:
            raise ValueError(f"a batch of {len(indices)} needs {len(chunks)} gradient slots, "
                             f"the engine has {self.slots}")
        tasks = [TrainTask(k, self.version, split, self.seed, epoch, chunk, k)
                 for k, chunk in enumerate(chunks)]
        backend = self.backend
        start = time.perf_counter()
        results = backend.run(tasks, tail, depth=1 if self.task_seconds > plan.LONG_TASK else None)
        wall = time.perf_counter() - start
        n = self.parallel
        busy = sum(r.busy for r in results)
        self.task_seconds = busy / len(results)
        compute = busy / n
        loss_sum = 0.0
        for r in results:
            loss_sum += r.loss_sum
        # NOTE: only the last result's wait delays the step: earlier ones wait while their
        # worker goes on with its next micro-batch
        waited = (max(backend.read_at) - max(r.finished for r in results)
                  if backend.same_clock else 0.0)
        return StepStats(samples=len(indices), loss_sum=loss_sum, correct=sum(r.correct for r in results),
                         slots=len(chunks), compute=compute, tail=backend.tail_idle / n if backend.size else 0.0,
                         wait=wall - compute - backend.broadcast, broadcast=backend.broadcast,
                         result_wait=max(0.0, waited),
                         load_weights=sum(r.shm_read for r in results) / n,
                         store_grads=sum(r.shm_write for r in results) / n)

    def _run_slices(self, tasks, stats):
        """Reduce or update tasks: in the workers when the backend slices them, else here; their
        reduce, update and shared-memory seconds (per worker) are added to ``stats``."""
        if self.backend.sliced:
            results, n = self.backend.run(tasks), self.parallel
        else:
            results, n = [run_task(self.compute, t) for t in tasks], 1
        for r in results:
            if isinstance(r, UpdateResult):
                io = r.shm_read + r.shm_write
                stats.reduce += r.reduce / n
                stats.shm_io += io / n
                stats.update += (r.busy - r.reduce - io) / n
            else:
                stats.reduce += r.busy / n
        return results

    def gradient(self, indices, epoch, split="train"):
        """The mean gradient over ``indices`` at the current weights (no step is taken).

        Returns a dict: ``grad`` (list of floats), ``loss_sum``, ``correct``, ``samples``,
        ``wall`` (seconds from dispatch to the last result), ``busy`` (worker compute seconds,
        summed), ``tail`` (seconds a worker idled on average between its last result and the
        last one: load imbalance, part of ``wall``; 0 in-process) and ``reduce`` (seconds).
        """
        tail = self._tail()
        s = self._train(list(indices), epoch, split, tail)
        start = time.perf_counter()
        grad = self._mean_gradient(s.slots, float(s.samples), tail, s)
        return {"grad": grad, "loss_sum": s.loss_sum, "correct": s.correct, "samples": s.samples,
                "wall": s.wall, "busy": s.compute * self.parallel, "tail": s.tail,
                "reduce": time.perf_counter() - start}

    def _tail(self):  # NOTE: pre-summing pays only where the reduction runs in the workers
        return TailSums(self.compute, self.reduce_slices) if self.backend.sliced else None

    def _mean_gradient(self, count, samples, tail, stats):
        """The mean of slots ``0..count-1`` as a list, reduced slice by slice into ``mean``."""
        self._run_slices([ReduceTask(k, count, samples, lo, hi, tail.done[k] if tail else 0)
                          for k, (lo, hi) in enumerate(self.reduce_slices)], stats)
        return self.compute.mean.tolist()

    def step(self, indices, epoch, lr, clip=None, split="train"):
        """One optimiser step on the mean gradient over ``indices``, at learning rate ``lr``.

        ``clip`` is a maximum gradient norm (see :func:`~paracnn.optim.clip_grad_norm`)
        or None. The new weights are published only when the loss, the mean
        gradient and the new weights are all finite; otherwise the current
        ones stay and ``diverged`` says which was not.

        Returns a :class:`~paracnn.parallel.step_stats.StepStats`: the counts,
        where the time went (``reduce_update`` runs from the last gradient to
        the published step), ``diverged`` and ``grad_norm`` (only with ``clip``).
        """
        tail = self._tail()
        s = self._train(list(indices), epoch, split, tail)
        start = time.perf_counter()
        s.diverged = "loss" if not math.isfinite(s.loss_sum) else None
        if s.diverged is None:
            s.diverged = self._update(s, lr, clip, tail)
        if s.diverged is None:
            self.version += 1
        s.reduce_update = time.perf_counter() - start
        s.presum = tail.seconds if tail is not None else 0.0
        return s

    def _update(self, s, lr, clip, tail):
        """Write the next version's weights and buffers; return what was not finite, or None."""
        count, samples, version, step = s.slots, float(s.samples), self.version, self.steps + 1
        if clip:
            # NOTE: the norm needs the whole mean gradient first: reduce, then update from it.
            grad = self._mean_gradient(count, samples, tail, s)
            if not all_finite(grad):
                return "gradient"
            s.grad_norm = norm = grad_norm(grad)
            tasks = [UpdateTask(k, version, None, samples, lo, hi, lr, step, clip_coef(norm, clip))
                     for k, (lo, hi) in enumerate(self.reduce_slices)]
        else:
            tasks = [UpdateTask(k, version, count, samples, lo, hi, lr, step, None, tail.done[k] if tail else 0)
                     for k, (lo, hi) in enumerate(self.reduce_slices)]
        results = self._run_slices(tasks, s)
        if not all(r.grad_finite for r in results):
            return "gradient"
        if not all(r.weights_finite for r in results):
            return "weights"
        return None

    def evaluate(self, split, should_stop=None):
        """Inference over the whole ``split`` at the published weights.

        Returns ``(loss_sum, predictions, busy_seconds)``, predictions in sample
        order. The loss sum is ``math.fsum`` of the per-sample losses, exactly
        rounded, so it does not depend on how the split was chunked.

        ``should_stop()``, if given, is asked between chunks (in-process) or
        as results arrive (workers); once it returns True no more chunks
        start, the ones running finish, and :class:`EvaluationStopped` is raised.
        """
        self._check_open()
        tasks = [EvalTask(k, self.version, split, chunk)
                 for k, chunk in enumerate(eval_chunks(len(self.datasets[split]), self.eval_batch))]
        latch = _Latch(should_stop) if should_stop is not None else None
        results = self.backend.run(tasks, should_stop=latch)
        if latch is not None and latch.fired:
            raise EvaluationStopped(f"evaluation of the {split} set stopped after "
                                    f"{sum(r is not None for r in results)} of {len(tasks)} chunks")
        losses, preds, busy = [], [], 0.0
        for r in results:
            losses += r.losses
            preds += r.preds
            busy += r.busy
        return math.fsum(losses), preds, busy

    def close(self):
        """Stop the workers and free every shared block. Idempotent."""
        if self._closed is None:
            self._closed = (self.get_weights(), self.get_buffers())
        self.backend.close()
        self.compute, self.datasets = None, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Latch:
    """``should_stop`` that remembers whether it ever said True."""

    def __init__(self, should_stop):
        self.should_stop, self.fired = should_stop, False

    def __call__(self):
        self.fired = self.fired or bool(self.should_stop())
        return self.fired
