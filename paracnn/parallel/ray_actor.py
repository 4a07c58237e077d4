"""What runs on the Ray side of :mod:`~paracnn.parallel.ray_backend`: connecting, the actor,
the zero-copy dataset bytes and the version check, and the driver's small Ray helpers.

``ray`` is imported only inside these functions, so importing paracnn never needs it.
"""

import atexit
import os
import pickle
import shutil
import signal
import tempfile
import threading
import traceback

from .. import __version__
from ..errors import ParacnnError
from .layout import SharedLayout
from .protocol import Failed, TrainTask, run_task
from .worker import describe_failure

#: the install command named when Ray is missing.
INSTALL = 'pip install "paracnn[ray]"'

def import_ray():
    """The ``ray`` module, or a one-line :class:`ParacnnError` naming :data:`INSTALL` (exit 2)."""
    try:
        import ray
    except ImportError:
        raise ParacnnError(f"--backend ray needs Ray, which is not installed; install it with: "
                           f"{INSTALL}") from None
    return ray


def distribution_versions():
    """``{distribution: version}`` of paracnn and of every distribution registering layers."""
    from ..registry import get_registry

    versions = {e.dist_key: e.version for e in get_registry().entries()}
    versions["paracnn"] = __version__
    return versions


def version_mismatch(driver, node):
    """One line naming each distribution whose version differs from the driver's, or None."""
    here = distribution_versions()
    diffs = [f"{dist} {here.get(dist, 'missing')} on node {node} but {version} on the driver"
             for dist, version in sorted(driver.items()) if here.get(dist) != version]
    diffs += [f"{dist} {version} on node {node} but missing on the driver"
              for dist, version in sorted(here.items()) if dist not in driver]
    return "; ".join(diffs) or None


class SharedBytes:
    """Bytes that Ray stores once and every actor maps in place (pickle protocol 5, out of band)."""

    def __init__(self, data):
        # NOTE: out of band, Ray hands back its own buffer type; a memoryview reads it in place
        self.data = data if isinstance(data, (bytes, bytearray)) else memoryview(data)

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return SharedBytes, (pickle.PickleBuffer(self.data),)
        return SharedBytes, (bytes(self.data),)


def connect(address=None, cpus=1):
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``), or start a local Ray of
    ``cpus`` CPUs; nothing when this process is connected already. Returns ``ray``."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    # NOTE: Ray's core worker installs its own SIGTERM handler (log, then die); the run's
    # handler must stay, so SIGTERM stops at a step boundary with a checkpoint as locally.
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ParacnnError(f"cannot join the Ray cluster at {address!r}: {first}; start one with "
                               f"'ray start --head' (docs/distributed.md) or fix --address") from e
    else:
        # NOTE: a Ray this process starts keeps its sockets and logs in a folder of its own,
        # removed at exit, so runs leave no sessions behind in /tmp/ray. Where Ray itself
        # would put them (not TMPDIR): its socket paths must stay under 108 bytes.
        folder = tempfile.mkdtemp(prefix="paracnn-ray-", dir=os.environ.get("RAY_TMPDIR", "/tmp"))
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 _temp_dir=folder)
        atexit.register(_stop_local_ray, ray, folder)
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)
    return ray


def _stop_local_ray(ray, folder):
    """At exit: stop the local Ray :func:`connect` started, and remove its folder."""
    try:
        ray.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class RayWorker:
    """The actor: a model built from the config, the datasets mapped from the object store.

    Args:
        config: the resolved config (``Config.data``); the model is built with ``seed``
            (its weights are replaced at the first task).
        layout: the engine's :class:`~paracnn.parallel.layout.SharedLayout` (for ``P``).
        datasets: ``{split: (ImageSet template, [images ref, labels ref])}``.
        versions: the driver's :func:`distribution_versions`.
    """

    def __init__(self, config, seed, layout, datasets, versions):
        import ray

        context = ray.get_runtime_context()
        self.node = ray.util.get_node_ip_address()
        self.node_id = context.get_node_id()
        self.mismatch = version_mismatch(versions, self.node)
        self.compute, self.loaded = None, None
        if self.mismatch:
            return  # NOTE: reported by ready(), before anything else runs here
        from ..config import config_from_dict

        model = config_from_dict(config).build_model(seed)
        sets = {}
        for split, (template, refs) in datasets.items():
            images, labels = (shared.data for shared in ray.get(refs))
            sets[split] = template.with_buffers(images, labels)
        self.compute = SharedLayout(layout.num_params, 1).private_compute(model, sets, None)

    def ready(self):
        """``(pid, node ip, node id, version mismatch or None)``."""
        return os.getpid(), self.node, self.node_id, self.mismatch

    def run(self, task, weights):
        """Run ``task`` at the weights in ``weights[0]`` (an object reference, fetched once per
        version). A train task returns ``(result, gradient bytes)``; a failure a :class:`Failed`."""
        import ray

        compute = self.compute
        try:
            if task.version != self.loaded:
                compute.weights(task.version)[:] = memoryview(ray.get(weights[0])).cast("d")
                self.loaded = task.version
            if isinstance(task, TrainTask):
                return run_task(compute, task._replace(slot=0)), compute.grads.tobytes()
            return run_task(compute, task), None
        except Exception as e:
            return Failed(task.id, traceback.format_exc(), describe_failure(e, compute.model))

    def burn(self, workload, rounds):
        """One calibration burn (see :mod:`paracnn.profiling.calibrate`)."""
        return workload(rounds)


def too_few_cpus(workers, cpus, free=None):
    """The one line for a cluster with fewer free CPUs than ``workers`` actors need."""
    have = f"{cpus:g} CPUs" + (f", {free:g} of them free," if free is not None else "")
    return (f"the Ray cluster has {have} but --workers {workers} needs {workers} (one per actor); "
            f"add nodes (ray start --address ...), or ask for fewer workers")


def kill_actor(ray, actor):
    """Kill ``actor`` (None: nothing), whatever state it or the cluster is in."""
    if actor is not None:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # NOTE: already dead, or the cluster is gone
            pass


def first_line(error):
    """The first line of a Ray error's text, for a one-line message."""
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__
