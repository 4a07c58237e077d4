"""The Engine: mini-batch gradients, optimiser steps and evaluation, in-process or over a worker pool.

A mini-batch of ``B`` sample indices is cut into micro-batches of a fixed size
``M`` (``train.micro_batch``; by default ``ceil(B / 8)`` clamped to 1..32),
**whatever the number of workers**. Micro-batch ``k`` writes its gradient sum
into slot ``k``; the slots are then added in slot order::

    grad = ((slot0 + slot1) + slot2) + ...      then  grad / B

so ``--workers 0``, ``1``, ``2`` or ``4`` perform the very same floating-point
operations in the same order and reach bit-identical weights.

With two or more workers, the rest of the step runs in the workers too: each
"update" task adds one slice of the parameter vector over all slots, applies
the optimiser to that slice and writes the new weights and momentum into
shared memory (a reduce-scatter with the update fused in). The parent's
serial work per step is then a few small messages, not passes over every
parameter. The weights and momentum are **double-buffered**: step ``v`` reads
buffer ``v % 2`` and writes the other, and the parent publishes version
``v + 1`` only once every slice is done and finite, so a worker that dies
mid-update has its slice recomputed to the same bits, and a NaN leaves the
last good weights in place.

With ``workers == 0`` everything runs in this process over plain arrays.
Otherwise the weights, the gradient slots and the datasets' bytes live in
shared memory, written once by the parent; tasks carry sample indices only.
"""

import gc
import math
import platform
import time
from array import array

from ..errors import TaskError
from ..optim import SGD, clip_coef, grad_norm
from .datasets import share_datasets
from .pool import WorkerPool
from .doubles import Doubles
from .shm import create_block, doubles, local_doubles, release_block
from .tasks import Compute, add_slots, all_finite, mean_of_slots
from .worker import WorkerSetup, describe_failure

#: the largest evaluation chunk when ``train.eval_batch`` is null.
EVAL_CHUNK = 256

#: the smallest slice of the parameter vector one "reduce" or "update" task works on.
REDUCE_SLICE = 2048

#: at most this many slices per worker, so a worker slowed by the host does not hold the
#: rest. (8 measured no better on LeNet-5: each slice costs a round trip, and the parent's
#: pre-summing of one slice, see :class:`TailSums`, already takes only about a millisecond.)
SLICES_PER_WORKER = 4

#: micro-batches that took longer than this (seconds, the last step's mean) are handed
#: out one per worker at a time: a round trip between tasks then costs well under 1 %,
#: and the last micro-batches go to whichever worker frees up first. (Queueing a second
#: one except for the last ``workers`` measured no better on LeNet-5: it saves 0.1 to
#: 0.3 ms of round trips per step, and a worker the host slows keeps its queued one.)
LONG_TASK = 0.02


class EvaluationStopped(Exception):
    """:meth:`Engine.evaluate` stopped because its ``should_stop`` returned True."""


def auto_micro_batch(batch_size):
    """The default micro-batch size: eight micro-batches per step, 1 to 32 samples each."""
    return max(1, min(32, math.ceil(batch_size / 8)))


def micro_batches(indices, size):
    """``indices`` cut into consecutive chunks of ``size`` (the last may be shorter)."""
    return [indices[i:i + size] for i in range(0, len(indices), size)]


class Engine:
    """Computes mini-batch gradients, optimiser steps and evaluations for a model.

    Args:
        model: a built :class:`~paracnn.model.Sequential` (its weights are not used:
            call :meth:`set_state` or :meth:`set_weights`).
        datasets: ``{split: ImageSet}``; they are moved into shared memory when
            ``workers > 0`` (use :attr:`datasets` afterwards).
        workers: 0 for in-process, else the number of worker processes.
        batch_size: the largest mini-batch :meth:`step` will get.
        optimizer: the :class:`~paracnn.optim.SGD` :meth:`step` applies
            (hyperparameters only; the momentum lives here). Default plain SGD.
        micro_batch: samples per task; None for :func:`auto_micro_batch`.
        eval_batch: samples per evaluation task; None for a sixteenth of the
            split, at most :data:`EVAL_CHUNK` (the results do not depend on it).
        seed: the run seed, from which per-sample seeds derive.
        start_method, max_failures, log, task_timeout: see
            :class:`~paracnn.parallel.pool.WorkerPool`.

    Example::

        with Engine(model, {"train": ds}, workers=2, batch_size=64,
                    optimizer=SGD(momentum=0.9)) as engine:
            engine.set_state(model.get_weights())
            out = engine.step(indices, epoch=0, lr=0.05)
            weights = engine.get_weights()
    """

    def __init__(self, model, datasets, *, workers=0, batch_size=64, optimizer=None, micro_batch=None,
                 eval_batch=None, seed=0, start_method=None, max_failures=3, log=None,
                 task_timeout=None):
        self.num_params = p = model.num_params()
        self.workers = workers
        self.seed = seed
        self.optimizer = optimizer if optimizer is not None else SGD()
        self.micro_batch = micro_batch or auto_micro_batch(batch_size)
        self.eval_batch = eval_batch
        self.slots = math.ceil(batch_size / self.micro_batch)
        self.version = 0
        self.task_seconds = 0.0  # mean busy seconds of the last step's micro-batches
        self.pool = self.compute = None
        self.state = self.grads = self.mean = self.prefix = None
        self.datasets = {}
        self._closed = None  # after close(): the last weights and momentum, as lists
        n = max(1, min(SLICES_PER_WORKER * workers, math.ceil(p / REDUCE_SLICE)))
        self.reduce_slices = [(p * i // n, p * (i + 1) // n) for i in range(n)]
        self._blocks = []
        if workers == 0:
            self.state = local_doubles(4 * p)
            self.grads = array("d", bytes(8 * p * self.slots))
            self.datasets = dict(datasets)
            self.compute = Compute(model, self.state, self.grads, self.datasets, self.optimizer)
            return
        try:
            state_block = create_block(8 * 4 * p)
            self._blocks.append(state_block)
            # the gradient block: the slots, then the mean, then the running prefix sums
            grads_block = create_block(8 * p * (self.slots + 2))
            self._blocks.append(grads_block)
            handles, self.datasets, data_blocks = share_datasets(datasets)
            self._blocks += data_blocks
            self.state = doubles(state_block, 4 * p)
            self.grads = doubles(grads_block, p * self.slots)
            self.mean = doubles(grads_block, p, offset=p * self.slots)
            self.prefix = doubles(grads_block, p, offset=p * (self.slots + 1))
            # NOTE: the parent's own view of the same memory, for work not worth a round trip.
            self.compute = Compute(model, self.state, self.grads, {}, self.optimizer, self.mean,
                                   self.prefix)
            setup = WorkerSetup(model, state_block.name, grads_block.name, self.slots, handles,
                                self.optimizer)
            if platform.python_implementation() == "PyPy":
                # NOTE: forked workers inherit the parent's heap, garbage included (the
                # dataset's decompression buffers), and PyPy sizes a process's next major
                # collection from its heap: collecting first keeps every worker smaller.
                gc.collect()
            self.pool = WorkerPool(setup, workers, start_method, max_failures, log, task_timeout)
        except BaseException:
            self.close()
            raise

    def worker_pids(self):
        return self.pool.pids() if self.pool else []

    # -- the published state ------------------------------------------------------------

    def set_state(self, weights, momentum=None):
        """Publish ``weights`` and the optimiser's ``momentum`` (None: zeros); return seconds taken.

        Both go into the buffers of the next version, which then becomes current.
        """
        self._check_open()
        start = time.perf_counter()
        nxt = self.version + 1
        self.compute.weights(nxt)[:] = _doubles(weights, self.num_params, "weights")
        momentum = bytes(8 * self.num_params) if momentum is None else momentum
        self.compute.momentum(nxt)[:] = _doubles(momentum, self.num_params, "momentum")
        self.version = nxt
        return time.perf_counter() - start

    def set_weights(self, weights):
        """Publish ``weights`` (a list or array of floats), keeping the momentum; return seconds taken."""
        return self.set_state(weights, self.get_momentum())

    def get_weights(self):
        """The current weights, as a list of floats (still available after :meth:`close`)."""
        if self._closed is not None:
            return list(self._closed[0])
        return self.compute.weights(self.version).tolist()

    def get_momentum(self):
        """The current momentum buffer, as a list of floats.

        Zeros before any step with momentum, and always zeros without momentum.
        Still available after :meth:`close`.
        """
        if self._closed is not None:
            return list(self._closed[1])
        if not self.optimizer.momentum:
            return [0.0] * self.num_params
        return self.compute.momentum(self.version).tolist()

    def _check_open(self):
        if self._closed is not None:
            raise RuntimeError("this Engine is closed: its workers and shared memory are gone")

    # -- work -------------------------------------------------------------------------

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

    def _train(self, indices, epoch, split, tail=None):
        """Run the micro-batches of ``indices``: per-slot gradients, and the figures of :meth:`gradient`.

        ``tail``: a :class:`TailSums` to run while a worker is idle at the end.
        """
        self._check_open()
        if not indices:
            raise ValueError("a step needs at least one sample index")
        chunks = micro_batches(indices, self.micro_batch)
        if len(chunks) > self.slots:
            raise ValueError(f"a batch of {len(indices)} needs {len(chunks)} gradient slots, "
                             f"the engine has {self.slots}")
        tasks = [("train", k, self.version, split, self.seed, epoch, chunk, k)
                 for k, chunk in enumerate(chunks)]
        start = time.perf_counter()
        if self.pool is None:
            results, idle = self._run(tasks), 0.0
        else:
            results = self.pool.run(tasks, tail, depth=1 if self.task_seconds > LONG_TASK else None)
            idle = self.pool.tail_idle / self.workers
        wall = time.perf_counter() - start
        loss_sum = 0.0
        for r in results:
            loss_sum += r[0]
        busy = sum(r[2] for r in results)
        self.task_seconds = busy / len(results) if results else 0.0
        return {"loss_sum": loss_sum, "correct": sum(r[1] for r in results), "samples": len(indices),
                "wall": wall, "busy": busy, "tail": idle, "slots": len(chunks)}

    def _in_parent(self):
        # NOTE: one worker would do the parent's work, plus the round trips.
        return self.pool is None or self.workers == 1

    def gradient(self, indices, epoch, split="train"):
        """The mean gradient over ``indices`` at the current weights (no step is taken).

        Returns a dict: ``grad`` (list of floats), ``loss_sum``, ``correct``,
        ``samples``, ``wall`` (seconds from dispatch to the last result),
        ``busy`` (worker compute seconds, summed), ``tail`` (seconds a worker
        idled on average between its last result and the last one: load
        imbalance, part of ``wall``; 0 in-process) and ``reduce`` (seconds).
        """
        tail = self._tail()
        out = self._train(list(indices), epoch, split, tail)
        start = time.perf_counter()
        out["grad"] = self._mean_gradient(out["slots"], float(out["samples"]), tail)
        out["reduce"] = time.perf_counter() - start
        return out

    def _tail(self):
        """A fresh :class:`TailSums` when the reduction runs in the workers, else None."""
        return None if self._in_parent() else TailSums(self)

    def _mean_gradient(self, count, samples, tail):
        """The mean of slots ``0..count-1`` as a list: in the workers by slices, or in-process."""
        if self._in_parent():
            return mean_of_slots(self.grads, self.num_params, count, samples, 0, self.num_params)
        self.pool.run([("reduce", k, count, samples, lo, hi, tail.done[k])
                       for k, (lo, hi) in enumerate(self.reduce_slices)])
        return self.mean.tolist()

    def step(self, indices, epoch, lr, clip=None, split="train"):
        """One optimiser step on the mean gradient over ``indices``, at learning rate ``lr``.

        ``clip`` is a maximum gradient norm (see :func:`~paracnn.optim.clip_grad_norm`)
        or None. The new weights are published only when the loss, the mean
        gradient and the new weights are all finite; otherwise the current
        ones stay and ``diverged`` says which was not.

        Returns a dict: ``loss_sum``, ``correct``, ``samples``, ``slots``
        (micro-batches), ``wall``, ``busy`` and ``tail`` as in :meth:`gradient`;
        ``diverged`` (None, ``"loss"``, ``"gradient"`` or ``"weights"``);
        ``grad_norm`` (only with ``clip``); ``update`` (seconds from the last
        gradient to the published step) and ``presum`` (seconds the parent spent
        summing finished slots while a worker idled: part of ``wall``, not of
        ``update``).
        """
        tail = self._tail()
        out = self._train(list(indices), epoch, split, tail)
        start = time.perf_counter()
        out["diverged"] = "loss" if not math.isfinite(out["loss_sum"]) else None
        if out["diverged"] is None:
            out["diverged"] = self._update(out, lr, clip, tail)
        if out["diverged"] is None:
            self.version += 1
        out["update"] = time.perf_counter() - start
        out["presum"] = tail.seconds if tail is not None else 0.0
        return out

    def _update(self, out, lr, clip, tail):
        """Write the next version's weights and momentum; return what was not finite, or None."""
        count, samples = out["slots"], float(out["samples"])
        version, p = self.version, self.num_params
        scale = None
        if clip:
            # NOTE: the norm needs the whole mean gradient first: reduce, then update from it.
            grad = self._mean_gradient(count, samples, tail)
            if not all_finite(grad):
                return "gradient"
            out["grad_norm"] = norm = grad_norm(grad)
            scale = clip_coef(norm, clip)
            if self._in_parent():
                return _first_bad([self.compute.apply(version, 0, p, grad, lr, scale)])
            # the update tasks read the mean the reduce tasks left
            tasks = [("update", k, version, None, samples, lo, hi, lr, scale)
                     for k, (lo, hi) in enumerate(self.reduce_slices)]
        elif self._in_parent():
            grad = mean_of_slots(self.grads, p, count, samples, 0, p)
            return _first_bad([self.compute.apply(version, 0, p, grad, lr)])
        else:
            tasks = [("update", k, version, count, samples, lo, hi, lr, None, tail.done[k])
                     for k, (lo, hi) in enumerate(self.reduce_slices)]
        return _first_bad(self.pool.run(tasks))

    def evaluate(self, split, should_stop=None):
        """Inference over the whole ``split`` at the published weights.

        Returns ``(loss_sum, predictions, busy_seconds)``, predictions in sample
        order. The loss sum is ``math.fsum`` of the per-sample losses, exactly
        rounded, so it does not depend on how the split was chunked.

        ``should_stop``, if given, is called with no arguments between chunks
        (in-process) or between rounds of at most ``workers`` chunks (pool);
        when it returns True, :class:`EvaluationStopped` is raised and nothing
        is returned. The engine stays usable.
        """
        self._check_open()
        n = len(self.datasets[split])
        size = self.eval_batch or max(1, min(EVAL_CHUNK, math.ceil(n / 16)))
        tasks = [("eval", k, self.version, split, range(a, min(n, a + size)))
                 for k, a in enumerate(range(0, n, size))]
        if should_stop is None:
            results = self._run(tasks)
        else:
            results = []
            # NOTE: rounds of one chunk per worker, so a stop waits for at most one chunk.
            step = max(1, self.workers)
            for a in range(0, len(tasks), step):
                if should_stop():
                    raise EvaluationStopped(f"evaluation of {split} stopped after "
                                            f"{min(n, a * size):,} of {n:,} samples")
                chunk = [(t[0], i) + t[2:] for i, t in enumerate(tasks[a:a + step])]
                results += self._run(chunk)
        losses, preds, busy = [], [], 0.0
        for r in results:
            losses += r[0]
            preds += r[1]
            busy += r[2]
        return math.fsum(losses), preds, busy

    def close(self):
        """Stop the workers and free every shared block. Idempotent."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._closed is None and self.compute is not None:
            self._closed = (self.get_weights(), self.get_momentum())
        if self._blocks:
            self.compute = None
            _release_views(self.state, self.grads, self.mean, self.prefix)
            for ds in self.datasets.values():
                _release_views(ds.images, ds.labels)
            self.state = self.grads = self.mean = self.prefix = None
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
        if isinstance(view, (memoryview, Doubles)):
            view.release()


class TailSums:
    """Work for the parent while a worker sits idle at the end of a step's micro-batches.

    The slots must be added in slot order, but the first ones are final long
    before the last micro-batch is: once slots ``0..k-1`` are all done, the
    parent adds them up, one slice of the vector per call
    (:func:`~paracnn.parallel.tasks.add_slots`), into the ``prefix`` buffer,
    and records in :attr:`done` how far each slice got. The reduce and update
    tasks then start from there and add only the rest: the same additions in
    the same order, so the bits do not change, and a core that would idle
    does part of the reduction. Only the parent writes ``prefix``, and only
    before those tasks are sent, so a worker's death cannot corrupt it.
    """

    def __init__(self, engine):
        self.engine = engine
        self.done = [0] * len(engine.reduce_slices)
        self.seconds = 0.0

    def __call__(self, results):
        start = time.perf_counter()
        ready = 0
        while ready < len(results) and results[ready] is not None:
            ready += 1
        if ready < 2:
            return False
        k = min(range(len(self.done)), key=self.done.__getitem__)
        if self.done[k] >= ready:
            return False
        e = self.engine
        lo, hi = e.reduce_slices[k]
        add_slots(e.grads, e.num_params, e.prefix, lo, hi, self.done[k], ready)
        self.done[k] = ready
        self.seconds += time.perf_counter() - start
        return True


def _first_bad(results):
    """What the update tasks' ``(gradient finite, weights finite, ...)`` flags say was not finite."""
    if not all(r[0] for r in results):
        return "gradient"
    if not all(r[1] for r in results):
        return "weights"
    return None


def _doubles(values, count, what):
    """``values`` as something a ``'d'`` memoryview slice accepts, checked for length."""
    if isinstance(values, (bytes, bytearray)):
        values = memoryview(values).cast("d")
    elif not isinstance(values, (array, memoryview)):
        values = array("d", values)
    if len(values) != count:
        raise ValueError(f"{what} holds {len(values)} values, the model has {count}")
    return values
