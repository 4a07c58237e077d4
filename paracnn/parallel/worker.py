"""The worker process: attach to shared memory, then answer tasks until told to stop.

Messages from the parent (tuples, small: indices only, never weights)::

    ("train", task_id, version, split, seed, epoch, indices, slot)
    ("eval",  task_id, version, split, indices)
    ("reduce", task_id, count, samples, lo, hi, done)
    ("update", task_id, version, count, samples, lo, hi, lr, scale, done)
                                        count None: from the mean a reduce pass left
    ("stop",)

Answers::

    ("ready", pid)                      once, after attaching
    ("done", task_id, result)           result = Compute.train / evaluate / reduce / update
    ("error", task_id, traceback_text, summary)
                                        the task raised; ``summary`` (one line, from
                                        :func:`describe_failure`) names the layer. Only
                                        text crosses the pipe: the exception itself may
                                        not pickle.

A worker ignores SIGINT and SIGTERM: Ctrl-C reaches the whole process group,
and the parent must finish the step, save a checkpoint and then stop the
workers itself. A worker whose parent disappears (even by SIGKILL) notices
within a second and exits, so none is ever orphaned.
"""

import os
import signal
import traceback

from .doubles import Doubles
from .shm import attach_block, doubles, release_block
from .tasks import Compute

#: how often an idle worker checks that its parent is still alive (seconds).
PARENT_CHECK_SECONDS = 1.0


class WorkerSetup:
    """Everything a worker needs, picklable for every start method.

    Args:
        model: the built model (its weights are replaced at the first task).
        state_name: shared block holding two weight vectors and two momentum
            buffers (see :class:`~paracnn.parallel.tasks.Compute`).
        grads_name: shared block holding ``slots`` gradient vectors, then the mean
            gradient, then the running prefix sums of the slots.
        slots: number of gradient slots (micro-batches per step).
        datasets: ``{split: SharedImageSet}`` handles.
        optimizer: the :class:`~paracnn.optim.SGD` that update tasks apply.
    """

    def __init__(self, model, state_name, grads_name, slots, datasets, optimizer):
        self.model = model
        self.state_name = state_name
        self.grads_name = grads_name
        self.slots = slots
        self.datasets = datasets
        self.optimizer = optimizer


def worker_main(conn, setup, parent_pid):
    """Entry point of a worker process (module level, so every start method can import it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    blocks = []
    compute = None
    try:
        compute = _attach(setup, blocks)
        conn.send(("ready", os.getpid()))
        _serve(conn, compute, parent_pid)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away; nothing left to answer
    finally:
        conn.close()
        if compute is not None:
            _detach(compute)
        for block in blocks:
            release_block(block, unlink=False)


def _attach(setup, blocks):
    p = setup.model.num_params()
    state_block = attach_block(setup.state_name)
    grads_block = attach_block(setup.grads_name)
    blocks += [state_block, grads_block]
    datasets = {split: handle.attach(blocks) for split, handle in setup.datasets.items()}
    return Compute(setup.model, doubles(state_block, 4 * p), doubles(grads_block, p * setup.slots),
                   datasets, setup.optimizer, mean=doubles(grads_block, p, offset=p * setup.slots),
                   prefix=doubles(grads_block, p, offset=p * (setup.slots + 1)))


def _detach(compute):
    # NOTE: views must go before their blocks close, or SharedMemory.__del__ complains at exit.
    views = [compute.state, compute.grads, compute.mean, compute.prefix]
    for ds in compute.datasets.values():
        views += [ds.images, ds.labels]
    compute.datasets = {}
    for view in views:
        if isinstance(view, (memoryview, Doubles)):
            view.release()


def _serve(conn, compute, parent_pid):
    while True:
        while not conn.poll(PARENT_CHECK_SECONDS):
            if os.getppid() != parent_pid:
                return
        msg = conn.recv()
        kind = msg[0]
        if kind == "stop":
            return
        task_id = msg[1]
        try:
            if kind == "train":
                result = compute.train(*msg[2:])
            elif kind == "eval":
                result = compute.evaluate(*msg[2:])
            elif kind == "reduce":
                result = compute.reduce(*msg[2:])
            elif kind == "update":
                result = compute.update(*msg[2:])
            else:
                raise ValueError(f"unknown task kind {kind!r}")
        except Exception as e:
            conn.send(("error", task_id, traceback.format_exc(), describe_failure(e, compute.model)))
            continue
        conn.send(("done", task_id, result))


def describe_failure(exc, model):
    """One line: the model layer ``exc`` was raised in, and the exception's type and text.

    For example ``layers[3] leaky_relu raised ZeroDivisionError: boom (in backward)``.
    The layer is the outermost frame of the traceback whose ``self`` is one of
    ``model.layers``, so a block's inner layer is reported as the block.
    """
    where = None
    try:
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            owner = frame.f_locals.get("self")
            index = next((i for i, layer in enumerate(model.layers) if layer is owner), None)
            if index is not None:
                where = (index, frame.f_code.co_name)
                break
    except Exception:  # NOTE: describing a failure must not fail; the traceback still travels
        pass
    try:
        text = " ".join(str(exc).split())
    except Exception:  # NOTE: a plugin's exception whose __str__ itself fails
        text = "(its message could not be read)"
    if len(text) > 300:
        text = text[:297] + "..."
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if where is None:
        return f"a task raised {what} (outside the model's layers)"
    index, method = where
    return f"layers[{index}] {model.types[index]} raised {what} (in {method})"
