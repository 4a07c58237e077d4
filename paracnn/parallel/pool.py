"""A pool of worker processes on this machine, behind the scheduler's :class:`~paracnn.parallel.scheduler.Backend` seam.

Each worker is a ``multiprocessing`` Process with a mailbox in shared memory
(:mod:`~paracnn.parallel.mailbox`), a semaphore the parent posts once per task,
and a pipe for what does not fit the mailbox. Every worker posts the one
semaphore the parent waits on, once per result, so a wait in the parent
covers them all and costs no ``select``. The parent checks that its workers
are alive whenever a wait times out, and at least every
:data:`LIVENESS_SECONDS` while results keep coming: a worker that dies
(SIGKILL, out of memory, a segfault in a plugin) is seen within one wait, its
unfinished tasks go back to the queue and a fresh worker takes its place.
Because a task's result depends only on the task (indices, seed, weight
version, gradient slot), the recomputed step is bit-identical.
``multiprocessing.Pool`` cannot do this: it hangs when a worker is killed
(CPython gh-66587).

A worker that is alive but answers nothing (stuck in a plugin, or stopped
with SIGSTOP) is killed after ``task_timeout`` seconds without progress and
then treated like a dead one. A task that *raises* is not retried (it would
raise again): :class:`~paracnn.parallel.failures.WorkerTaskError` names the layer.
The dispatch itself is the shared :func:`~paracnn.parallel.scheduler.run`.
"""

import atexit
import collections
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait

from ..errors import ParacnnError
from .failures import RemoteTraceback, WorkerError, WorkerTaskError, describe_exit
from .mailbox import CAPACITY, PIPE, Mailbox
from .plan import affinity_cpus
from .protocol import Failed, Ready, Stop
from .scheduler import POLL_SECONDS, Backend
from .shm import create_block, release_block
from .worker import Channel, worker_main

#: seconds a worker may take to start (import paracnn, unpickle the model, attach).
START_TIMEOUT = 120.0
#: at most this long between liveness checks while results keep arriving (a check is a
#: ``waitpid`` per worker: too cheap to matter at this rate, too dear for every result).
LIVENESS_SECONDS = 0.1


class WorkerPool(Backend):
    """``workers`` processes computing :mod:`~paracnn.parallel.tasks` for the parent.

    Args:
        setup: a :class:`~paracnn.parallel.worker.WorkerSetup` (pickled to each worker).
        workers: number of processes, >= 1.
        start_method: ``fork``, ``spawn``, ``forkserver`` or None (the platform default).
        max_failures: deaths tolerated in a row (without a clean run in between)
            before :meth:`run` gives up with :class:`WorkerError`.
        log: called with a one-line message when a worker is replaced.
        task_timeout: seconds a busy worker may go without finishing a task before
            it is killed and replaced; None or 0 waits forever.
        items: the most sample indices one task carries (the micro-batch, or an
            evaluation chunk); larger tasks still work, through the pipe.
        splits: the dataset split names the tasks use.
    """

    #: the scheduler keeps at most this many tasks in flight per worker (a mailbox ring's size).
    max_depth = CAPACITY
    same_clock = True

    def __init__(self, setup, workers, start_method=None, max_failures=3, log=None, task_timeout=None,
                 items=256, splits=("train", "val", "test")):
        super().__init__(max_failures, log, task_timeout)
        if workers < 1:
            raise ValueError("a WorkerPool needs at least one worker")
        try:
            self.ctx = multiprocessing.get_context(start_method)
        except ValueError:
            methods = ", ".join(multiprocessing.get_all_start_methods())
            raise ParacnnError(f"start method {start_method!r} is not available here; "
                               f"use one of: {methods}") from None
        self.start_method = self.ctx.get_start_method()
        self.setup, self.size, self.items, self.splits = setup, workers, items, tuple(splits)
        self.cores = affinity_cpus()
        self.procs, self.conns, self.doorbells = [None] * workers, [None] * workers, [None] * workers
        self.sent, self.read = [0] * workers, [0] * workers  # tasks written, results read, per worker
        self.ids = [collections.deque() for _ in range(workers)]  # task ids sent and not yet answered
        self.closed = False
        self.mailboxes, self.control = [], None
        self._checked = 0.0
        # NOTE: workers ignore SIGTERM, so multiprocessing's own exit handler (terminate, then
        # join) would wait forever for a pool left open by a script that raised; stop it first.
        atexit.register(self.close)
        try:
            self.results_bell = self.ctx.Semaphore(0)
            self._box_bytes = Mailbox.nbytes(items)
            self.control = create_block(workers * self._box_bytes)
            self.mailboxes = [Mailbox(self.control.buf[w * self._box_bytes:(w + 1) * self._box_bytes],
                                      self.splits, items) for w in range(workers)]
            for w in range(workers):
                self._spawn(w)
            self._wait_ready(range(workers))
        except BaseException:
            self.close()
            raise

    # -- processes ---------------------------------------------------------------
    def _spawn(self, w):
        self.mailboxes[w].reset()
        self.sent[w] = self.read[w] = 0
        self.ids[w].clear()
        # NOTE: a new doorbell: the dead worker's may still count tasks it never took.
        self.doorbells[w] = self.ctx.Semaphore(0)
        channel = Channel(self.control.name, w * self._box_bytes, self._box_bytes, self.items,
                          self.splits, self.doorbells[w], self.results_bell)
        parent_conn, child_conn = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=worker_main, args=(child_conn, self.setup, os.getpid(), channel),
                                name=f"paracnn-worker-{w}", daemon=True)
        proc.start()
        child_conn.close()
        self.procs[w], self.conns[w] = proc, parent_conn

    def _wait_ready(self, which):
        pending = {w for w in which}
        deadline = time.monotonic() + START_TIMEOUT
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                w = min(pending)
                raise WorkerError(f"worker {w} (pid {self.procs[w].pid}) did not start within "
                                  f"{START_TIMEOUT:.0f} s")
            objs = {self.conns[w]: w for w in pending}
            objs.update({self.procs[w].sentinel: w for w in pending})
            for obj in wait(list(objs), timeout=min(left, POLL_SECONDS)):
                w = objs[obj]
                if w not in pending:
                    continue
                try:
                    msg = self.conns[w].recv() if self.conns[w].poll() else None
                except (EOFError, OSError):
                    msg = None
                if isinstance(msg, Ready):
                    pending.discard(w)
                    continue
                proc = self.procs[w]
                proc.join(1.0)
                if not proc.is_alive():
                    raise WorkerError(f"worker {w} (pid {proc.pid}) failed to start: "
                                      f"{describe_exit(proc.exitcode)}; run with --workers 0 "
                                      f"to see the error in-process")

    def pids(self):
        """PIDs of the live workers (for memory accounting)."""
        return [p.pid for p in self.procs if p is not None and p.is_alive()]

    # -- the scheduler's seam ----------------------------------------------------------
    def live(self):
        return range(self.size)

    def send(self, w, task_id, task):
        n = self.sent[w]
        on_pipe = not self.mailboxes[w].tasks.write(n, task)
        self.sent[w] = n + 1
        self.ids[w].append(task_id)
        self.doorbells[w].release()
        if on_pipe:
            try:
                self.conns[w].send(task)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass  # NOTE: the worker is dead: the next liveness check says so
        return True

    def poll(self, timeout):
        bell = self.results_bell
        woke = bell.acquire(timeout=timeout) if timeout > 0 else bell.acquire(False)
        while bell.acquire(False):  # NOTE: before reading the counters, so no post is lost
            pass
        done, dead = [], {}
        for w in range(self.size):
            self._collect(w, done, dead)
        now = time.monotonic()
        if not woke or now - self._checked > LIVENESS_SECONDS:
            self._checked = now
            for w in range(self.size):
                if w not in dead and not self.procs[w].is_alive():
                    self._collect(w, done, dead)  # NOTE: what it finished before dying still counts
                    dead[w] = None
        return done, dead

    def _collect(self, w, done, dead):
        """Append worker ``w``'s new results to ``done``; note it in ``dead`` if it died mid-answer."""
        box = self.mailboxes[w]
        count = box.counter[0]
        while self.read[w] < count:
            result = box.results.read(self.read[w])
            if result is PIPE:
                result = self._recv(w)
                if result is None:
                    dead[w] = None
                    return
            self.read[w] += 1
            task_id = self.ids[w].popleft()
            if isinstance(result, Failed):
                raise WorkerTaskError(f"{result.summary}, in worker {w} (pid {self.procs[w].pid}); run "
                                      f"with --debug to see the worker's traceback"
                                      ) from RemoteTraceback(result.traceback)
            done.append((w, task_id, result))

    def _recv(self, w):
        """The object worker ``w`` is sending through its pipe; None if it dies first."""
        conn, proc = self.conns[w], self.procs[w]
        try:
            while not conn.poll(POLL_SECONDS):
                if not proc.is_alive():
                    return None
            return conn.recv()
        except (EOFError, OSError):
            return None

    def kill(self, w):
        self.procs[w].kill()  # NOTE: SIGKILL ends a SIGSTOPped process too
        return (f"did not finish a task within {self.task_timeout:g} s (hung, or "
                f"stopped); killed it with signal {signal.SIGKILL.value} (SIGKILL)")

    def describe(self, w, reason):
        proc = self.procs[w]
        proc.join(1.0)
        return f"worker {w} (pid {proc.pid}) {reason or describe_exit(proc.exitcode)}"

    def restart(self, w, message=None):
        try:
            self.conns[w].close()
        except OSError:
            pass
        self._spawn(w)
        self._wait_ready([w])

    # -- shutdown ------------------------------------------------------------------
    def close(self, timeout=5.0):
        """Stop every worker: ask politely, then SIGKILL what is left; free the mailboxes. Idempotent."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        for w, conn in enumerate(self.conns):
            if conn is not None:
                try:
                    self.send(w, -1, Stop())
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc is not None and proc.is_alive():
                proc.kill()
                proc.join(timeout)
        for conn in self.conns:
            if conn is not None:
                conn.close()
        for box in self.mailboxes:
            box.release()
        self.mailboxes = []
        if self.control is not None:
            release_block(self.control, unlink=True)
            self.control = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
