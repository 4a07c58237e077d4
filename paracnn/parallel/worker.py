"""The worker process: attach to shared memory, then answer tasks until told to stop.

Tasks and results cross through the worker's :class:`~paracnn.parallel.mailbox.Mailbox`
in shared memory, with a semaphore as the doorbell each way; what has no
codec there (``Stop``, a ``Failed`` task's traceback, an oversized evaluation
chunk) travels pickled through the worker's pipe, and so does ``Ready(pid)``,
sent once after attaching. A task that raised answers
``Failed(id, traceback_text, summary)``, the summary one line from
:func:`describe_failure` naming the layer.

A worker ignores SIGINT and SIGTERM: Ctrl-C reaches the whole process group,
and the parent must finish the step, save a checkpoint and then stop the
workers itself. A worker whose parent disappears (even by SIGKILL) notices
within a second and exits, so none is ever orphaned.
"""

import os
import signal
import traceback

from .layout import SharedLayout
from .mailbox import PIPE, Mailbox
from .protocol import Failed, Ready, Stop, run_task
from .shm import attach_block, release_block

#: how often an idle worker checks that its parent is still alive (seconds).
PARENT_CHECK_SECONDS = 1.0


class WorkerSetup:
    """Everything a worker needs, picklable for every start method.

    Args:
        model: the built model (its weights are replaced at the first task).
        state_name, grads_name: the shared state and gradient blocks.
        layout: the :class:`~paracnn.parallel.layout.SharedLayout` of those blocks.
        datasets: ``{split: SharedImageSet}`` handles.
        optimizer: the optimiser (SGD, Adam or AdamW) whose update the update tasks apply.
    """

    def __init__(self, model, state_name, grads_name, layout, datasets, optimizer):
        self.model = model
        self.state_name = state_name
        self.grads_name = grads_name
        self.layout = layout
        self.datasets = datasets
        self.optimizer = optimizer


class Channel:
    """How one worker talks to the parent besides its pipe, picklable for every start method.

    Args:
        control_name: the pool's control block; this worker's mailbox is
            ``offset:offset + nbytes`` of it.
        items: the most indices or predictions one mailbox record carries.
        splits: the dataset split names, in the order both sides encode them.
        doorbell: the semaphore the parent posts once per task sent.
        results_bell: the semaphore every worker posts once per result written.
    """

    def __init__(self, control_name, offset, nbytes, items, splits, doorbell, results_bell):
        self.control_name, self.offset, self.nbytes = control_name, offset, nbytes
        self.items, self.splits = items, tuple(splits)
        self.doorbell, self.results_bell = doorbell, results_bell

    def mailbox(self, block):
        """The :class:`Mailbox` over this worker's part of ``block`` (the attached control block)."""
        return Mailbox(block.buf[self.offset:self.offset + self.nbytes], self.splits, self.items)


def worker_main(conn, setup, parent_pid, channel):
    """Entry point of a worker process (module level, so every start method can import it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    blocks = []
    compute = mailbox = None
    try:
        compute = _attach(setup, blocks)
        control = attach_block(channel.control_name)
        blocks.append(control)
        mailbox = channel.mailbox(control)
        conn.send(Ready(os.getpid()))
        _serve(conn, compute, mailbox, channel, parent_pid)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent went away; nothing left to answer
    finally:
        conn.close()
        if mailbox is not None:
            mailbox.release()
        if compute is not None:
            SharedLayout.release(compute)
        for block in blocks:
            release_block(block, unlink=False)


def _attach(setup, blocks):
    state_block = attach_block(setup.state_name)
    grads_block = attach_block(setup.grads_name)
    blocks += [state_block, grads_block]
    datasets = {split: handle.attach(blocks) for split, handle in setup.datasets.items()}
    return setup.layout.compute(setup.model, state_block.buf, grads_block.buf, datasets, setup.optimizer)


def _serve(conn, compute, mailbox, channel, parent_pid):
    """Answer tasks in the order they were sent, the n-th result into result record n."""
    doorbell, results_bell = channel.doorbell, channel.results_bell
    received = answered = 0
    while True:
        if not doorbell.acquire(timeout=PARENT_CHECK_SECONDS):
            if os.getppid() != parent_pid:
                return
            continue
        task = mailbox.tasks.read(received)
        received += 1
        if task is PIPE:
            task = conn.recv()
        if isinstance(task, Stop):
            return
        try:
            result = run_task(compute, task)
        except Exception as e:
            result = Failed(task.id, traceback.format_exc(), describe_failure(e, compute.model))
        on_pipe = not mailbox.results.write(answered, result)
        answered += 1
        mailbox.counter[0] = answered  # NOTE: after the record: a parent that sees the count sees it
        results_bell.release()
        if on_pipe:
            conn.send(result)


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
