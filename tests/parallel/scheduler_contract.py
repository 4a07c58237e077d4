"""The scheduler's contract, written once and run against every backend.

``tests/parallel/test_scheduler.py`` runs it on the toy thread backend and on
the local worker pool, ``tests/ray/test_ray_scheduler.py`` on Ray actors. A
backend case is ``(backend, crash, reference)``: the backend, ``crash(w)``
making worker ``w`` die the way that backend's workers die, and
``reference(task)`` computing a task in this process.
"""

import pytest

from paracnn.parallel.failures import WorkerError
from paracnn.parallel.protocol import EvalTask
from paracnn.parallel.scheduler import DEPTH


def eval_tasks(n, size=3, split="train"):
    """``n`` evaluation tasks over consecutive chunks of ``split``."""
    return [EvalTask(k, 0, split, range(k * size, (k + 1) * size)) for k in range(n)]


def check_results_come_back_by_task_id(backend, crash, reference):
    tasks = eval_tasks(6)
    results = backend.run(tasks)
    assert [(r.losses, r.preds) for r in results] == [(reference(t).losses, reference(t).preds) for t in tasks]
    assert len({v for r in results for v in r.losses}) > 1  # NOTE: real weights: a wrong order shows
    assert len(backend.read_at) == len(tasks) and all(t is not None for t in backend.read_at)
    assert backend.tail_idle >= 0.0


class InFlight:
    """Counts, through ``backend``'s ``send`` and ``poll``, the tasks each worker holds; keeps
    the most one worker held (``most_per_worker``) and the most workers busy at once (``most_busy``)."""

    def __init__(self, backend, monkeypatch):
        self.held, self.most_per_worker, self.most_busy = {}, 0, 0
        self.send, self.poll = backend.send, backend.poll
        monkeypatch.setattr(backend, "send", self.counting_send)
        monkeypatch.setattr(backend, "poll", self.counting_poll)

    def counting_send(self, w, t, task):
        self.held[w] = self.held.get(w, 0) + 1
        self.most_per_worker = max(self.most_per_worker, self.held[w])
        self.most_busy = max(self.most_busy, sum(1 for n in self.held.values() if n))
        return self.send(w, t, task)

    def counting_poll(self, timeout):
        done, dead = self.poll(timeout)
        for w, _, _ in done:
            self.held[w] -= 1
        return done, dead


def check_no_worker_holds_more_than_depth(backend, crash, reference, monkeypatch):
    counts = InFlight(backend, monkeypatch)
    backend.run(eval_tasks(8))
    assert counts.most_per_worker == DEPTH
    counts.most_per_worker = 0
    backend.run(eval_tasks(8), depth=1)
    assert counts.most_per_worker == 1


def check_a_worker_that_dies_mid_run_is_replaced_and_its_tasks_rerun(backend, crash, reference,
                                                                   monkeypatch):
    tasks = eval_tasks(6)
    expected = [reference(t).preds for t in tasks]
    send, fired = backend.send, []

    def send_then_crash(w, t, task):
        ok = send(w, t, task)
        if not fired:
            fired.append(w)
            crash(w)
        return ok

    monkeypatch.setattr(backend, "send", send_then_crash)
    restarts, lines = backend.restarts, []
    monkeypatch.setattr(backend, "log", lines.append)
    results = backend.run(tasks)
    assert [r.preds for r in results] == expected
    assert backend.restarts == restarts + 1
    assert len(lines) == 1 and "recomputing its tasks" in lines[0], lines
    assert backend.failures == 1
    assert [r.preds for r in backend.run(tasks)] == expected
    assert backend.failures == 0  # a clean run: the count of deaths in a row starts again


def check_workers_that_keep_dying_stop_the_run(backend, crash, reference, monkeypatch):
    send = backend.send

    def send_then_crash(w, t, task):
        ok = send(w, t, task)
        crash(w)
        return ok

    monkeypatch.setattr(backend, "send", send_then_crash)
    monkeypatch.setattr(backend, "max_failures", 1)
    monkeypatch.setattr(backend, "log", None)
    with pytest.raises(WorkerError, match="giving up after 2 worker failures in a row"):
        backend.run(eval_tasks(4))


def check_should_stop_hands_out_nothing_more(backend, crash, reference):
    seen = []

    def stop_after_first(results=None):
        seen.append(1)
        return len(seen) > 1

    results = backend.run(eval_tasks(12), depth=1, should_stop=stop_after_first)
    done = [r for r in results if r is not None]
    assert 1 <= len(done) < 12
    assert results[-1] is None


#: every check, by name: a backend's test module parametrises over these.
CHECKS = {name[len("check_"):]: fn for name, fn in dict(globals()).items() if name.startswith("check_")}


def run_check(name, case, monkeypatch):
    """Run check ``name`` on ``case`` (``(backend, crash, reference)``)."""
    fn = CHECKS[name]
    takes_patch = "monkeypatch" in fn.__code__.co_varnames[:fn.__code__.co_argcount]
    return fn(*case, monkeypatch) if takes_patch else fn(*case)
