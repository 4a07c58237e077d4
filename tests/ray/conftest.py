"""One Ray cluster for the whole session: a head without CPUs and two 1-CPU nodes.

Skipped when ``ray`` is not installed (``pip install -e ".[test,ray]"``). All of
the cluster's files go into a short temporary folder (``RAY_TMPDIR``: Ray's
socket paths must stay under 108 bytes), which teardown removes after
checking that none of the cluster's processes is left.
"""

import os
import shutil
import tempfile
import time

import pytest

#: seconds the cluster's processes may take to exit after shutdown.
EXIT_TIMEOUT = 30.0

# NOTE: Ray rewrites 127.0.0.1 to the host's own address unless told not to; the test
# cluster stays on loopback (.ci/run sets the same).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def processes_using(folder):
    """PIDs of live processes whose command line mentions ``folder``."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and any(folder in part for part in proc.info["cmdline"] or ()):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc.pid)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="session")
def ray_cluster():
    """``(cluster, [node, node])``, with this process connected to it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    folder = tempfile.mkdtemp(prefix="pcr-", dir="/tmp")
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = folder
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        yield cluster, nodes
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved
        deadline = time.monotonic() + EXIT_TIMEOUT
        while processes_using(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = processes_using(folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"
