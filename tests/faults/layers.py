"""Layers that fail on purpose, for the fault tests.

They live in an importable module (not in a test file) so that workers started
with ``spawn`` can unpickle them. :func:`fault_registry` registers them next to
the installed layers, the way a plugin would.
"""

import math
import os
import signal
import threading
from importlib import metadata

from paracnn.layer import Layer
from paracnn.registry import Registry, discover

DIST = "paracnn-test-faults"
LAYERS = {
    "flaky": "tests.faults.layers:Flaky",
    "stopper": "tests.faults.layers:Stopper",
    "kill_after": "tests.faults.layers:KillAfter",
    "nan_after": "tests.faults.layers:NaNAfter",
    "killer": "tests.parallel.killer:Killer",
}


def fault_registry():
    """The installed layers plus the ones in this module, as a plugin would register them."""
    extra = [(metadata.EntryPoint(name, value, "paracnn.layers"), DIST, "0")
             for name, value in LAYERS.items()]
    return Registry(entry_points=discover() + extra, disable_plugins=False)


class _Identity(Layer):
    def forward(self, x):
        return x

    def backward(self, dy):
        return dy

    def in_worker(self):
        return os.getpid() != self.parent_pid


class Unpicklable(Exception):
    """An exception that cannot cross a pipe: it holds a lock."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


class TwoArguments(Exception):
    """An exception that pickles but cannot be unpickled (its __init__ needs two arguments)."""

    def __init__(self, what, value):
        super().__init__(f"{what} went wrong with {value}")


ERRORS = {
    "value": lambda: ValueError("slope must be finite, got nan"),
    "unpicklable": lambda: Unpicklable("holds a lock"),
    "two-arguments": lambda: TwoArguments("the slope", 42),
}


class Flaky(_Identity):
    """Identity that raises ``error`` in ``phase`` (forward or backward) while training in a worker."""

    def __init__(self, error="value", phase="forward", parent_pid=None):
        super().__init__()
        self.error, self.phase = error, phase
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid

    def forward(self, x):
        if self.phase == "forward" and self.training and self.in_worker():
            raise ERRORS[self.error]()
        return x

    def backward(self, dy):
        if self.phase == "backward" and self.in_worker():
            raise ERRORS[self.error]()
        return dy


class Stopper(_Identity):
    """Identity whose first training pass in a worker SIGSTOPs that worker while ``marker`` exists.

    The stopped worker is alive but never answers: a hung worker. With ``once``
    the marker is removed first, so the replacement worker runs normally.
    """

    def __init__(self, marker, once=True, parent_pid=None):
        super().__init__()
        self.marker, self.once = str(marker), once
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid

    def forward(self, x):
        if self.training and self.in_worker() and os.path.exists(self.marker):
            if self.once:
                try:
                    os.unlink(self.marker)
                except FileNotFoundError:
                    return x  # another worker took it
            os.kill(os.getpid(), signal.SIGSTOP)
        return x


class KillAfter(_Identity):
    """Identity that SIGKILLs its worker at its ``calls``-th training sample, once (``marker``)."""

    def __init__(self, marker, calls=20, parent_pid=None):
        super().__init__()
        self.marker, self.calls, self.seen = str(marker), calls, 0
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid

    def forward(self, x):
        if self.training and self.in_worker():
            self.seen += 1
            if self.seen >= self.calls and os.path.exists(self.marker):
                try:
                    os.unlink(self.marker)
                except FileNotFoundError:
                    return x
                os.kill(os.getpid(), signal.SIGKILL)
        return x


class NaNAfter(_Identity):
    """Identity until this process has trained on ``samples`` samples; NaN from then on."""

    def __init__(self, samples):
        super().__init__()
        self.samples, self.seen = samples, 0

    def forward(self, x):
        if self.training:
            self.seen += 1
            if self.seen > self.samples:
                return [math.nan] * len(x)
        return x
