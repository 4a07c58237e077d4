"""The one dispatch loop, and the seam every backend that uses it fills in.

:func:`run` hands tasks of :mod:`~paracnn.parallel.protocol` to workers, at most
``depth`` in flight per worker, and gives the next one to whichever worker frees
up first, so a fast worker takes more micro-batches than a slow one. The
*result* of a run never depends on that assignment. It also owns everything a
backend would otherwise write again:

- a worker that dies has its unfinished tasks put back at the front of the
  queue and is replaced (:meth:`Backend.restart`); ``max_failures`` deaths in a
  row raise :class:`~paracnn.parallel.failures.WorkerError`;
- a worker that finishes nothing for ``task_timeout`` seconds while it has work
  is killed (:meth:`Backend.kill`) and then treated like a dead one;
- ``on_idle`` work for this process while a worker would sit idle at the end of a
  run, ``should_stop`` between results, and the idle tail (:attr:`Backend.tail_idle`).

A backend only moves tasks and reports what happened. The local pool
(:class:`~paracnn.parallel.pool.WorkerPool`: processes, shared-memory mailboxes)
and Ray (:class:`~paracnn.parallel.ray_backend.RayBackend`: actors) are the two
there are; ``tests/parallel/test_scheduler.py`` runs the same tests against both
and against a toy backend in threads, which is also the shortest example of the
seam. CONTRIBUTING.md ("Adding a backend") walks through writing one.
"""

import collections
import time

from .failures import WorkerError

#: seconds :meth:`Backend.poll` waits for news when there is nothing else to do (a dead
#: worker is seen within one such wait).
POLL_SECONDS = 0.5

#: tasks in flight per worker by default: the next one waits in the worker's queue, so a
#: worker never idles for a round trip between short tasks.
DEPTH = 2


class Backend:
    """What :func:`run` needs from a backend that runs tasks in other processes.

    A backend subclasses this and provides the six methods below that raise
    NotImplementedError; :meth:`run` is then the shared scheduler. Its workers
    sit at *positions* ``0..size-1``; a position may be empty for a while (a
    Ray node lost, with no CPU left to place a replacement on).

    Attributes set here (the subclass calls ``super().__init__``):
        max_failures: deaths tolerated in a row, without a clean run in between.
        log: called with a one-line message when a worker is replaced; or None.
        task_timeout: seconds a busy worker may go without finishing a task; None or 0: forever.
        failures, restarts: deaths in a row (reset by a clean run), and in all.
        tail_idle: after :meth:`run`, seconds summed over the workers from each
            one's last answer to the run's last answer (load imbalance).
        read_at: after :meth:`run`, this process's ``time.monotonic()`` when it
            read each task's result (by task id; None for one not computed).
    """

    #: how log lines and errors name one worker ("worker", "Ray actor").
    noun = "worker"
    #: the most tasks a worker can hold at once (None: no limit); ``depth`` is capped by it.
    max_depth = None
    #: True when the workers' ``time.monotonic()`` is this process's (one machine), so a
    #: result's ``finished`` stamp can be compared with :attr:`read_at`.
    same_clock = False
    #: the CPUs the workers share with this process, or None (other machines). At most this
    #: many workers are busy at once: with more workers than CPUs the rest wait their turn
    #: with empty queues instead of time-slicing the CPUs (8 workers on 2 CPUs burned 59 %
    #: more CPU time per LeNet-5 step than the serial step, 4 workers 28 %, 2 workers none).
    #: ``on_idle`` work runs only while fewer than this are busy, so it takes an idle core.
    cores = None

    def __init__(self, max_failures=3, log=None, task_timeout=None):
        self.max_failures, self.log, self.task_timeout = max_failures, log, task_timeout
        self.failures = self.restarts = 0
        self.tail_idle = 0.0
        self.read_at = []

    # -- what a backend provides -------------------------------------------------------
    def live(self):
        """The positions that hold a worker now, in order."""
        raise NotImplementedError

    def send(self, w, task_id, task):
        """Hand ``task`` (the run's task ``task_id``) to the worker at ``w``; False if it is known
        dead (the task then stays queued, and :meth:`poll` reports the death)."""
        raise NotImplementedError

    def poll(self, timeout):
        """Wait up to ``timeout`` seconds for news; return ``(done, dead)``.

        ``done``: ``(w, task_id, result)`` for each task finished since the last
        call (a worker that died after finishing a task still counts it). ``dead``:
        ``{w: how it ended}`` for each worker found dead (its unfinished tasks
        are rerun elsewhere). A task that raised raises
        :class:`~paracnn.parallel.failures.WorkerTaskError` here.
        """
        raise NotImplementedError

    def kill(self, w):
        """Kill the hung worker at ``w``; return the reason for the log, e.g. "did not finish ..."."""
        raise NotImplementedError

    def restart(self, w, message):
        """Start a new worker at ``w`` in place of the dead one, forgetting the old one's tasks.

        May leave the position empty (the run goes on with the rest) or raise
        :class:`~paracnn.parallel.failures.WorkerError` when none is left;
        ``message`` is :meth:`describe`'s line about the dead one, for that error.
        """
        raise NotImplementedError

    def describe(self, w, reason):
        """One line naming the worker at ``w`` and how it ended, e.g. ``worker 1 (pid 42) killed by ...``."""
        raise NotImplementedError

    # -- what the scheduler does with it ------------------------------------------------
    def run(self, tasks, on_idle=None, depth=None, should_stop=None):
        """Run ``tasks`` (ids ``0..n-1``); the results as a list by task id. See :func:`run`."""
        return run(self, tasks, on_idle=on_idle, depth=depth, should_stop=should_stop)

    def replace(self, w, reason):
        """Count a death, give up after too many in a row, else log it and :meth:`restart` ``w``."""
        message = self.describe(w, reason)
        self.failures += 1
        self.restarts += 1
        if self.failures > self.max_failures:
            raise WorkerError(f"{message}; giving up after {self.failures} worker failures in a row")
        if self.log:
            self.log(f"{message}; starting a new {self.noun} and recomputing its tasks")
        self.restart(w, message)


def run(backend, tasks, *, on_idle=None, depth=None, should_stop=None):
    """Run ``tasks`` on ``backend``'s workers; the results as a list indexed by task id.

    ``depth``: tasks in flight per worker (None: :data:`DEPTH`). 1 suits long
    tasks: each is handed out only when a worker is free, so the last ones go
    to the workers that finish first instead of queueing behind a slow one.

    ``on_idle(results)``, if given, is called while every task has been handed
    out and some worker has nothing left to do (the tail of a run, when a core
    would sit idle): it gets the results so far (None where not yet done), may
    do a short piece of work in this process and returns True if it did, to be
    called again after the next quick check for news.

    ``should_stop()``, if given, is asked as results arrive; once it returns
    True no more tasks are handed out, the ones in flight are waited for, and
    the results not computed stay None.
    """
    depth = depth or DEPTH
    if backend.max_depth:
        depth = min(depth, backend.max_depth)
    results = [None] * len(tasks)
    backend.read_at = read_at = [None] * len(tasks)
    todo = collections.deque(range(len(tasks)))
    inflight = collections.defaultdict(collections.deque)  # position -> task ids, oldest first
    progress = {}  # position -> monotonic time it last got work while idle, or answered
    start = time.perf_counter()
    last = {}  # each worker that got work: its last answer
    remaining, clean = len(tasks), True
    while remaining:
        if todo and should_stop is not None and should_stop():
            remaining -= len(todo)
            todo.clear()
            continue
        _dispatch(backend, tasks, todo, inflight, progress, depth, last, start)
        busy = on_idle is not None and not todo and _core_idle(backend, inflight) and on_idle(results)
        done, dead = backend.poll(0 if busy else POLL_SECONDS)
        now, stamp = time.monotonic(), time.perf_counter()
        for w, t, result in done:
            if t not in inflight[w]:
                continue  # NOTE: an answer from a worker already given up
            inflight[w].remove(t)
            results[t], read_at[t] = result, now
            remaining -= 1
            progress[w], last[w] = now, stamp
        dead.update(_hung(backend, inflight, progress, dead))
        for w in sorted(dead):
            clean = False
            todo.extendleft(reversed(inflight.pop(w, ())))
            backend.replace(w, dead[w])
            progress[w], last[w] = time.monotonic(), time.perf_counter()
    if clean:
        backend.failures = 0
    used = [t for w, t in last.items() if w in backend.live()]
    backend.tail_idle = sum(max(used) - t for t in used) if used else 0.0
    return results


def _dispatch(backend, tasks, todo, inflight, progress, depth, last, start):
    """Fill the queues of at most ``cores`` busy workers up to ``depth``, but queue behind a busy
    worker only while more tasks are left than workers can run at once: the last ones go to
    whichever worker frees up first (on LeNet-5 under PyPy that cut the idle tail of a
    2-worker step from 7 to 3 ms; a hand-over costs about 0.1 ms)."""
    live = backend.live()
    running = min(len(live), backend.cores or len(live))
    busy = sum(1 for w in live if inflight[w])
    for w in live:
        queue = inflight[w]
        if not queue and busy >= running:
            continue
        while todo and len(queue) < depth and (not queue or len(todo) > running):
            t = todo.popleft()
            if not backend.send(w, t, tasks[t]):
                todo.appendleft(t)  # the worker is dead; poll says so
                break
            if len(queue) == 0:
                progress[w] = time.monotonic()
                last.setdefault(w, start)
                busy += 1
            queue.append(t)


def _core_idle(backend, inflight):
    """True when a worker has nothing to do and, on a machine of ``cores``, a core is free too."""
    live = backend.live()
    working = sum(1 for w in live if inflight[w])
    return working < len(live) and (backend.cores is None or working < backend.cores)


def _hung(backend, inflight, progress, dead):
    """Kill the busy workers that made no progress for ``task_timeout`` s: ``{w: reason}``."""
    if not backend.task_timeout:
        return {}
    now, hung = time.monotonic(), {}
    for w in backend.live():
        if w not in dead and inflight[w] and now - progress.get(w, now) > backend.task_timeout:
            hung[w] = backend.kill(w)
    return hung
