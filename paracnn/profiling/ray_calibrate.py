"""The calibration of a Ray profile: the same burns as :mod:`.calibrate`, run in Ray actors.

A profile of ``--backend ray`` must ask what ``p`` busy *actors* get from the
hardware (on a cluster, from several machines), so the burners are actors
spread over the nodes like the training actors. They reserve no CPU: they
burn only while no step runs, and a reservation would leave the training
actors' placement group short.
"""

import time

from ..parallel.ray_actor import connect
from .calibrate import BURN_ROUNDS, Calibrator, burn


class RayBurner:
    """The actor: runs ``workload`` (default :func:`~paracnn.profiling.calibrate.burn`) on request."""

    def __init__(self, workload=None):
        self.workload = workload or burn

    def burn(self, rounds):
        return self.workload(rounds)


class RayCalibrator(Calibrator):
    """:class:`~paracnn.profiling.calibrate.Calibrator` with ``processes`` Ray actors as burners.

    Args:
        address: the Ray cluster (None: the one this process is connected to, or a
            local Ray of ``processes`` CPUs).
        processes, rounds, repeats, workload: as for :class:`Calibrator`.
    """

    def __init__(self, processes, address=None, rounds=None, repeats=3, workload=None):
        self.ray = connect(address, processes)
        self.rounds, self.repeats = rounds or BURN_ROUNDS, repeats
        self.actors, self.conns, self.procs = [], [], []
        try:
            actor_class = self.ray.remote(RayBurner)
            self.actors = [actor_class.options(num_cpus=0, scheduling_strategy="SPREAD").remote(workload)
                           for _ in range(processes)]
            self._tune(processes, workload, rounds)
        except BaseException:
            self.close()
            raise

    def _burn(self, p):
        start = time.perf_counter()
        self.ray.get([actor.burn.remote(self.rounds) for actor in self.actors[:p]])
        return time.perf_counter() - start

    def close(self):
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # NOTE: already gone with the cluster
                pass
        self.actors = []
