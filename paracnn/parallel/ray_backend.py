"""The Ray backend: the engine's train and evaluation tasks on Ray actors, across machines.

(:func:`~paracnn.parallel.ray_spec.backend_spec` chooses it; the actor is
:class:`~paracnn.parallel.ray_actor.RayWorker`.)

``paracnn train CONFIG --backend ray --workers N [--address auto|HOST:PORT]``
runs the same :class:`~paracnn.parallel.engine.Engine` as the local pool; only
where the micro-batches are computed changes:

- N actors of one CPU each, placed with a SPREAD placement group (so over as
  many nodes as there are). Each builds the model from the resolved config
  and checks that paracnn and every layer plugin have the driver's versions.
- The datasets' bytes go into the object store once, as out-of-band pickle
  buffers: an actor reads them in place, zero-copy on each node.
- The weights are put once per step (their float64 bytes); a task carries
  only that reference and sample indices. An actor returns its micro-batch's
  loss and gradient sum, which the driver writes into gradient slot ``k``.
- The driver then adds the slots in slot order, clips and updates exactly as
  in-process, so the weights are bit-identical to ``--workers 0`` and to the
  local pool, whatever the number of actors.

Faults: an actor that dies (``RayActorError``, ``ActorUnavailableError``
included) or that finishes nothing for ``train.worker_timeout`` seconds is
killed and replaced, and its micro-batches are recomputed; a replacement that
cannot be placed within :data:`REPLACE_TIMEOUT` is given up and the run goes
on with the remaining actors (same results). ``train.max_worker_failures``
deaths in a row raise :class:`~paracnn.parallel.failures.WorkerError` (exit 3,
after a checkpoint). :meth:`RayBackend.close` kills every actor and removes
the placement group; a Ray this process started stops when it exits.
"""

import os
import signal
import time

from ..errors import ParacnnError
from .layout import SharedLayout
from .failures import RemoteTraceback, WorkerError, WorkerTaskError
from .protocol import Failed
from .scheduler import Backend
from .ray_actor import (RayWorker, SharedBytes, connect, distribution_versions, first_line, kill_actor,
                        too_few_cpus)

#: seconds to wait for the cluster to place all N actors (one CPU each) before giving up.
PLACEMENT_TIMEOUT = 30.0

#: seconds an actor may take to start (import paracnn, build the model, map the datasets).
START_TIMEOUT = 120.0

#: seconds a replacement actor may take to be placed and start before the run goes on
#: without it (a killed actor's replacement is ready in about 0.3 s; a lost node's
#: bundle waits until Ray declares the node dead, about 15 s).
REPLACE_TIMEOUT = 5.0


class RayBackend(Backend):
    """``workers`` Ray actors computing the engine's train and evaluation tasks.

    The reduction and the update run on the driver (``sliced`` False), over
    the driver's own :class:`~paracnn.parallel.tasks.Compute`. The dispatch is
    the shared :func:`~paracnn.parallel.scheduler.run`; this class only moves
    tasks (an actor call each) and reports what came back.
    """

    noun = "actor"
    sliced = False
    pool = None
    start_method = None

    def __init__(self, spec, model, datasets, layout, optimizer, *, workers, max_failures=3,
                 log=None, task_timeout=None):
        super().__init__(max_failures, log, task_timeout)
        self.ray = ray = connect(spec.address, workers)
        from ray.util.placement_group import placement_group

        self.spec = spec
        self.datasets = dict(datasets)
        self.compute = layout.private_compute(model, self.datasets, optimizer)
        self.layout, self.seed = layout, spec.config["train"]["seed"]
        self.actors, self.info = [None] * workers, [None] * workers
        self.refs = {}  # object reference -> (position, task id, task) of each call in flight
        self.broadcast = 0.0
        self.weights = (None, None)  # (version, object reference) of the last put
        self.pg = self.actor_class = None
        self.here = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        try:
            cpus = ray.cluster_resources().get("CPU", 0)
            if cpus < workers:
                raise ParacnnError(too_few_cpus(workers, cpus))
            self.pg = placement_group([{"CPU": 1}] * workers, strategy="SPREAD")
            ready, _ = ray.wait([self.pg.ready()], timeout=PLACEMENT_TIMEOUT)
            if not ready:
                free = ray.available_resources().get("CPU", 0)
                raise ParacnnError(too_few_cpus(workers, cpus, free))
            self.data_refs = self._put_datasets(datasets)
            self.versions = distribution_versions()
            for w in range(workers):
                self.actors[w] = self._start(w)
            for w in range(workers):
                self.info[w] = self._ready(w, START_TIMEOUT)
                if self.info[w] is None:
                    raise WorkerError(f"Ray actor {w} did not start within {START_TIMEOUT:.0f} s; "
                                      f"see 'ray status' and the Ray logs of its node")
        except BaseException:
            self.close()
            raise

    @property
    def size(self):
        return sum(a is not None for a in self.actors)

    def _put_datasets(self, datasets):
        refs, by_buffer = {}, {}
        for split, ds in datasets.items():
            pair = []
            for buf in (ds.images, ds.labels):
                if id(buf) not in by_buffer:
                    # NOTE: buf is kept alive with its reference, so ids stay unique
                    by_buffer[id(buf)] = (self.ray.put(SharedBytes(buf)), buf)
                pair.append(by_buffer[id(buf)][0])
            refs[split] = (ds.with_buffers(None, None), pair)
        return refs

    def _start(self, w):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=w)
        if self.actor_class is None:
            self.actor_class = self.ray.remote(RayWorker)
        return self.actor_class.options(num_cpus=1, scheduling_strategy=strategy, max_restarts=0).remote(
            self.spec.config, self.seed, self.layout, self.data_refs, self.versions)

    def _ready(self, w, timeout):
        """Wait for actor ``w``; its ``ready()`` answer, or None if it is not up within ``timeout``."""
        ray = self.ray
        ref = self.actors[w].ready.remote()
        done, _ = ray.wait([ref], timeout=timeout)
        if not done:
            return None
        try:
            pid, ip, node_id, mismatch = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            raise WorkerError(f"Ray actor {w} failed to start: {first_line(e)}; run with --workers 0 "
                              f"to see the error in-process") from e
        if mismatch:
            raise ParacnnError(f"version mismatch: {mismatch}; install the same versions on every "
                               f"node (see docs/distributed.md)")
        return {"pid": pid, "ip": ip, "node_id": node_id}

    def pids(self):
        """PIDs of the actors on this machine (remote nodes' processes are not measured)."""
        return [i["pid"] for a, i in zip(self.actors, self.info) if a is not None and i
                and i["node_id"] == self.here]

    def nodes(self):
        """The node ID of each live actor."""
        return [i["node_id"] for a, i in zip(self.actors, self.info) if a is not None and i]

    def _weights_ref(self, version):
        if self.weights[0] != version:
            start = time.perf_counter()
            self.weights = (version, self.ray.put(self.compute.weights(version).tobytes()))
            self.broadcast += time.perf_counter() - start
        return self.weights[1]

    def run(self, tasks, on_idle=None, depth=None, should_stop=None):
        """Run ``tasks`` on the actors; results by task id. See :func:`~paracnn.parallel.scheduler.run`
        (``on_idle`` is not used: nothing is pre-summed on the driver)."""
        self.broadcast = 0.0
        return super().run(tasks, depth=depth, should_stop=should_stop)

    # -- the scheduler's seam ----------------------------------------------------------
    def live(self):
        return [w for w, actor in enumerate(self.actors) if actor is not None]

    def send(self, w, task_id, task):
        ref = self.actors[w].run.remote(task, [self._weights_ref(task.version)])
        self.refs[ref] = (w, task_id, task)
        return True

    def poll(self, timeout):
        ray, refs = self.ray, list(self.refs)
        if not refs:
            return [], {}
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done, dead = [], {}
        for ref in ready:
            w, t, task = self.refs.pop(ref)
            try:
                value = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
                dead[w] = first_line(e)
                continue
            if isinstance(value, Failed):
                raise WorkerTaskError(f"{value.summary}, in Ray actor {w} on node "
                                      f"{self.info[w]['ip']}; run with --debug to see the actor's "
                                      f"traceback") from RemoteTraceback(value.traceback)
            done.append((w, t, self._record(task, value)))
        return done, dead

    def _record(self, task, value):
        result, grad = value
        if grad is not None:
            p, k = self.layout.num_params, task.slot
            self.compute.grads[k * p:(k + 1) * p] = memoryview(grad).cast("d")
        return result

    def kill(self, w):
        info = self.info[w] or {}
        kill_actor(self.ray, self.actors[w])
        if info.get("ip") == self.ip:
            # NOTE: a stopped or hung process ignores Ray's kill request for seconds, keeping
            # its CPU reserved; on this machine SIGKILL frees the bundle for the replacement now.
            try:
                os.kill(info["pid"], signal.SIGKILL)
            except OSError:
                pass
        return f"did not finish a task within {self.task_timeout:g} s (hung); killed it"

    def describe(self, w, reason):
        info = self.info[w] or {}
        return f"Ray actor {w} (pid {info.get('pid')} on node {info.get('ip')}) died: {reason}"

    def restart(self, w, message):
        """Kill actor ``w``, start another in its bundle; go on without it if it cannot be placed."""
        ray = self.ray
        kill_actor(ray, self.actors[w])
        for ref in [ref for ref, (v, _, _) in self.refs.items() if v == w]:
            del self.refs[ref]
        self.actors[w] = self.info[w] = None
        self.actors[w] = self._start(w)
        self.info[w] = self._ready(w, REPLACE_TIMEOUT)
        if self.info[w] is None:
            kill_actor(ray, self.actors[w])
            self.actors[w] = None
            if not self.size:
                raise WorkerError(f"{message}; no replacement could be placed within "
                                  f"{REPLACE_TIMEOUT:g} s and no actor is left")
            if self.log:
                self.log(f"no replacement for Ray actor {w} could be placed within {REPLACE_TIMEOUT:g} s; "
                         f"going on with {self.size} actors (the results do not change)")

    def close(self):
        """Kill every actor and remove the placement group. Idempotent."""
        for w, actor in enumerate(self.actors):
            kill_actor(self.ray, actor)
            self.actors[w] = None
        if self.pg is not None:
            from ray.util.placement_group import remove_placement_group

            try:
                remove_placement_group(self.pg)
            except Exception:  # NOTE: the cluster may already be gone (Ctrl-C, a lost head)
                pass
            self.pg = None
        if self.compute is not None:
            SharedLayout.release(self.compute)
            self.compute = None
