"""A pool of worker processes that survives a worker being killed.

Each worker is a ``multiprocessing`` Process with its own duplex Pipe. The
parent never blocks without a timeout: it waits on every pipe *and* every
process sentinel with :func:`multiprocessing.connection.wait`, so a worker
that dies (SIGKILL, out of memory, a segfault in a plugin) is seen within
one wait. Its unfinished tasks go back to the queue and a fresh worker takes
its place; because a task's result depends only on the task (indices, seed,
weight version, gradient slot), the recomputed step is bit-identical.
``multiprocessing.Pool`` cannot do this: it hangs when a worker is killed
(CPython gh-66587).

A worker that is alive but answers nothing (stuck in a plugin, or stopped
with SIGSTOP) is killed after ``task_timeout`` seconds without progress and
then treated like a dead one. A task that *raises* is not retried (it would
raise again): :class:`~paracnn.parallel.failures.WorkerTaskError` names the layer.

Tasks are handed out dynamically, at most :attr:`WorkerPool.depth` in flight
per worker (or as many as :meth:`WorkerPool.run` is told), so a fast worker
takes more micro-batches than a slow one. The *result* of a run never depends
on that assignment.
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
from .protocol import Failed, Ready, Stop
from .worker import worker_main

#: seconds a worker may take to start (import paracnn, unpickle the model, attach).
START_TIMEOUT = 120.0
#: seconds between checks while waiting (a dead worker is seen within one wait).
POLL_SECONDS = 0.5


class WorkerPool:
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
    """

    #: tasks in flight per worker by default: the next one waits in the pipe, so
    #: a worker never idles for a round trip between short tasks.
    depth = 2

    def __init__(self, setup, workers, start_method=None, max_failures=3, log=None, task_timeout=None):
        if workers < 1:
            raise ValueError("a WorkerPool needs at least one worker")
        try:
            self.ctx = multiprocessing.get_context(start_method)
        except ValueError:
            methods = ", ".join(multiprocessing.get_all_start_methods())
            raise ParacnnError(f"start method {start_method!r} is not available here; "
                               f"use one of: {methods}") from None
        self.start_method = self.ctx.get_start_method()
        self.setup = setup
        self.size = workers
        self.max_failures = max_failures
        self.log = log
        self.task_timeout = task_timeout
        self.procs, self.conns = [None] * workers, [None] * workers
        self.failures = self.restarts = 0
        self.tail_idle = 0.0
        self.closed = False
        # NOTE: workers ignore SIGTERM, so multiprocessing's own exit handler (terminate, then
        # join) would wait forever for a pool left open by a script that raised; stop it first.
        atexit.register(self.close)
        try:
            for w in range(workers):
                self._spawn(w)
            self._wait_ready(range(workers))
        except BaseException:
            self.close()
            raise

    # -- processes ---------------------------------------------------------------
    def _spawn(self, w):
        parent_conn, child_conn = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=worker_main, args=(child_conn, self.setup, os.getpid()),
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

    def _replace(self, w, reason=None):
        proc = self.procs[w]
        proc.join(1.0)
        self.failures += 1
        self.restarts += 1
        message = (f"worker {w} (pid {proc.pid}) {reason or describe_exit(proc.exitcode)}")
        try:
            self.conns[w].close()
        except OSError:
            pass
        if self.failures > self.max_failures:
            raise WorkerError(f"{message}; giving up after {self.failures} worker failures in a row")
        if self.log:
            self.log(f"{message}; starting a new worker and recomputing its tasks")
        self._spawn(w)
        self._wait_ready([w])

    # -- running tasks -------------------------------------------------------------
    def run(self, tasks, on_idle=None, depth=None, should_stop=None):
        """Run ``tasks`` (tasks of :mod:`~paracnn.parallel.protocol` whose ids are ``0..n-1``).

        Returns the results as a list indexed by task id, whatever order they
        finished in. A worker that dies is replaced and its tasks rerun.
        Afterwards :attr:`tail_idle` holds the seconds, summed over the workers,
        from each worker's last answer (or the start, if it got no task) to
        the run's last answer: the idle tail that load imbalance costs.

        ``on_idle(results)``, if given, is called while every task has been handed
        out and some worker has nothing left to do (the tail of a run, when a
        core would sit idle): it gets the results so far (None where not yet
        done), may do a short piece of work in this process and returns True
        if it did, to be called again after the next quick check of the pipes.

        ``depth`` overrides :attr:`depth` for this run. 1 suits long tasks: each
        is handed out only when a worker is free, so the last ones go to the
        workers that finish first instead of queueing behind a slow one.

        ``should_stop()``, if given, is asked as results arrive; once it returns
        True no more tasks are handed out, the ones in flight are waited for
        (so no stale answer is left in a pipe) and the results not computed
        stay None.
        """
        results = [None] * len(tasks)
        todo = collections.deque(range(len(tasks)))
        inflight = [collections.deque() for _ in range(self.size)]
        # NOTE: when each worker last made progress: got work while idle, or answered.
        progress = [time.monotonic()] * self.size
        remaining = len(tasks)
        clean = True
        last = [time.perf_counter()] * self.size  # each worker's last answer
        while remaining:
            if todo and should_stop is not None and should_stop():
                remaining -= len(todo)
                todo.clear()
                continue
            idle = [not q for q in inflight]
            self._dispatch(tasks, todo, inflight, depth or self.depth)
            now = time.monotonic()
            for w in range(self.size):
                if idle[w] and inflight[w]:
                    progress[w] = now
            # NOTE: every sentinel, busy or not: a worker that died idle must be
            # replaced too, or its share of the tasks would never be sent.
            objs = {}
            for w in range(self.size):
                objs[self.conns[w]] = w
                objs[self.procs[w].sentinel] = w
            busy = on_idle is not None and not todo and not all(inflight) and on_idle(results)
            ready = wait(list(objs), timeout=0 if busy else POLL_SECONDS)
            dead = {}
            for obj in ready:
                w = objs[obj]
                if w in dead:
                    continue
                done = self._drain(w, inflight[w], results)
                if done:
                    progress[w] = time.monotonic()
                    last[w] = time.perf_counter()
                remaining -= done
                if not self.procs[w].is_alive() or obj is self.procs[w].sentinel:
                    self.procs[w].join(0.1)
                    if not self.procs[w].is_alive():
                        dead[w] = None
            dead.update(self._kill_hung(inflight, progress, dead))
            for w in sorted(dead):
                clean = False
                todo.extendleft(reversed(inflight[w]))
                inflight[w].clear()
                self._replace(w, dead[w])
        if clean:
            self.failures = 0
        end = max(last)
        self.tail_idle = sum(end - t for t in last)
        return results

    def _kill_hung(self, inflight, progress, dead):
        """Kill the busy workers that made no progress for ``task_timeout`` s: ``{w: reason}``."""
        if not self.task_timeout:
            return {}
        now, hung = time.monotonic(), {}
        for w in range(self.size):
            if w not in dead and inflight[w] and now - progress[w] > self.task_timeout:
                self.procs[w].kill()  # NOTE: SIGKILL ends a SIGSTOPped process too
                hung[w] = (f"did not finish a task within {self.task_timeout:g} s (hung, or "
                           f"stopped); killed it with signal {signal.SIGKILL.value} (SIGKILL)")
        return hung

    def _dispatch(self, tasks, todo, inflight, depth):
        for w in range(self.size):
            while todo and len(inflight[w]) < depth:
                t = todo.popleft()
                try:
                    self.conns[w].send(tasks[t])
                except (BrokenPipeError, ConnectionResetError, OSError):
                    todo.appendleft(t)  # the worker is dead; its sentinel says so next wait
                    break
                inflight[w].append(t)

    def _drain(self, w, inflight, results):
        """Read every answer waiting on worker ``w``'s pipe; return how many tasks finished."""
        done = 0
        conn = self.conns[w]
        while inflight:
            try:
                if not conn.poll():
                    break
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(msg, Failed):
                raise WorkerTaskError(f"{msg.summary}, in worker {w} (pid {self.procs[w].pid}); run "
                                      f"with --debug to see the worker's traceback"
                                      ) from RemoteTraceback(msg.traceback)
            inflight.remove(msg.id)
            results[msg.id] = msg.result
            done += 1
        return done

    # -- shutdown ------------------------------------------------------------------
    def close(self, timeout=5.0):
        """Stop every worker: ask politely, then SIGKILL what is left. Idempotent."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        for conn in self.conns:
            if conn is not None:
                try:
                    conn.send(Stop())
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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
