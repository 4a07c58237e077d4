"""What the machine lets us use: CPU affinity, the cgroup CPU quota, and a description of it.

Example::

    cpus = usable_cpus()          # {"usable": 2, "affinity": 2, "cgroup_quota": None, ...}
    for line in oversubscription_warnings([1, 2, 4, 8], cpus): print(line)
"""

import os
import platform
import sys
from pathlib import Path

from .. import kernels
from ..parallel.plan import affinity_cpus
from ..workers import oversubscription_warning

CGROUP_ROOT = "/sys/fs/cgroup"

#: cgroup v1 mounts the cpu controller under one of these names.
V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def cgroup_cpu_quota(root=None):
    """``(cpus, file)``: the CPUs the cgroup quota allows (may be fractional), and where it was read.

    cgroup v2 ``cpu.max`` holds ``"QUOTA PERIOD"`` or ``"max PERIOD"``; v1 has
    ``cpu.cfs_quota_us`` (-1 for none) and ``cpu.cfs_period_us``. ``cpus`` is
    None without a quota; ``file`` is None when neither exists.
    """
    root = Path(root or CGROUP_ROOT)
    v2 = root / "cpu.max"
    try:
        fields = v2.read_text().split()
    except OSError:
        fields = None
    if fields is not None:
        return _ratio(fields[0] if fields else "max", fields[1] if len(fields) > 1 else "100000"), str(v2)
    for name in V1_DIRS:
        quota_file = root / name / "cpu.cfs_quota_us"
        try:
            quota = quota_file.read_text().strip()
            period = (root / name / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            continue
        return _ratio(quota, period), str(quota_file)
    return None, None


def _ratio(quota, period):
    try:
        quota, period = int(quota), int(period)
    except ValueError:
        return None  # "max", or unreadable: no limit we can use
    return quota / period if quota > 0 and period > 0 else None


def usable_cpus(root=None):
    """``usable`` = min(affinity, cgroup quota), with the figures it came from."""
    affinity = affinity_cpus()
    quota, source = cgroup_cpu_quota(root)
    usable = affinity if quota is None else min(affinity, quota)
    return {"usable": usable, "affinity": affinity, "cgroup_quota": quota, "cgroup_file": source,
            "cpu_count": os.cpu_count()}


def describe_cpus(cpus):
    quota = "none" if cpus["cgroup_quota"] is None else f"{cpus['cgroup_quota']:g}"
    return f"{cpus['usable']:g} usable CPUs (affinity {cpus['affinity']}, cgroup quota {quota})"


def oversubscription_warnings(workers, cpus):
    """One warning when any worker count exceeds the usable CPUs, else none.

    The words are :func:`paracnn.workers.oversubscription_warning`'s, which train and evaluate use too.
    """
    line = oversubscription_warning(workers, cpus)
    return [line] if line else []


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def jit_name():
    """``"PyPy 7.3.11 JIT"`` when a JIT compiles this interpreter's loops, else None."""
    version = getattr(sys, "pypy_version_info", None)
    if version is None:
        return None
    try:
        import pypyjit  # noqa: F401 - only PyPy builds with a JIT have it
    except ImportError:
        return None
    return f"PyPy {version.major}.{version.minor}.{version.micro} JIT"


def machine_info(cpus, load=None, **extra):
    """Python, kernels and CPU facts for the profile's JSON, plus ``extra`` (start method, batch...).

    ``load``: the load average taken before the profile ran (its own processes add to it).
    """
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "jit": jit_name(), "kernels": "jit_kernels" if kernels.JIT else "kernels",
            "sumprod": kernels.HAVE_SUMPROD, "platform": platform.platform(),
            "usable_cpus": cpus["usable"], "affinity_cpus": cpus["affinity"],
            "cgroup_cpu_quota": cpus["cgroup_quota"], "cpu_count": cpus["cpu_count"],
            "load_average": load, **extra}
