"""The shortest backend there is: threads of this process behind the scheduler's seam.

It is what CONTRIBUTING.md ("Adding a backend") walks through, and one of the
backends ``tests/parallel/scheduler_contract.py`` runs the same tests against.
Each worker is a thread with its own copy of the model over shared buffers, a
queue in and the backend's one queue out. A worker "dies" when told to
(:meth:`ThreadBackend.crash`): it stops answering, as a killed process would.
"""

import copy
import queue
import threading

from paracnn.parallel.protocol import run_task
from paracnn.parallel.scheduler import Backend


class ThreadBackend(Backend):
    """``workers`` threads running tasks on copies of ``model`` over one ``SharedLayout``'s buffers."""

    same_clock = True

    def __init__(self, model, datasets, layout, optimizer, *, workers, max_failures=3, log=None,
                 task_timeout=None):
        super().__init__(max_failures, log, task_timeout)
        self.size = workers
        self.state, self.grads = bytearray(layout.state_bytes), bytearray(layout.grads_bytes)
        self.parts = (model, datasets, layout, optimizer)
        self.compute = self.make()
        self.answers = queue.Queue()  # (worker, generation, task id, result)
        self.inboxes, self.threads, self.generation, self.crashed = [], [], [0] * workers, set()
        for w in range(workers):
            self.inboxes.append(queue.Queue())
            self.threads.append(None)
            self._start(w)

    def make(self):
        """A Compute of its own (a copy of the model) over the backend's one pair of buffers."""
        model, datasets, layout, optimizer = self.parts
        return layout.compute(copy.deepcopy(model), self.state, self.grads, datasets, optimizer)

    def _start(self, w):
        self.generation[w] += 1
        inbox, gen, compute = queue.Queue(), self.generation[w], self.make()
        self.inboxes[w] = inbox
        self.crashed.discard(w)
        thread = threading.Thread(target=self._serve, args=(w, gen, inbox, compute), daemon=True)
        self.threads[w] = thread
        thread.start()

    def _serve(self, w, gen, inbox, compute):
        while True:
            item = inbox.get()
            if item is None or w in self.crashed and self.generation[w] == gen:
                return
            task_id, task = item
            self.answers.put((w, gen, task_id, run_task(compute, task)))

    def crash(self, w):
        """Make worker ``w`` stop answering, as if its process had been killed."""
        self.crashed.add(w)

    # -- the seam --------------------------------------------------------------------------
    def live(self):
        return range(self.size)

    def send(self, w, task_id, task):
        self.inboxes[w].put((task_id, task))
        return True

    def poll(self, timeout):
        done = []
        try:
            done.append(self.answers.get(timeout=timeout) if timeout else self.answers.get_nowait())
            while True:
                done.append(self.answers.get_nowait())
        except queue.Empty:
            pass
        dead = {w: "crashed" for w in self.crashed}
        return [(w, t, r) for w, gen, t, r in done if gen == self.generation[w]], dead

    def kill(self, w):
        self.crash(w)
        return f"did not finish a task within {self.task_timeout:g} s; stopped it"

    def describe(self, w, reason):
        return f"thread {w} {reason}"

    def restart(self, w, message):
        self.inboxes[w].put(None)
        self._start(w)

    def close(self):
        for inbox in self.inboxes:
            inbox.put(None)
