"""A test layer that SIGKILLs the process running it while a marker file exists."""

import os
import signal
import time

from paracnn.layer import Layer


class Killer(Layer):
    """Identity, except that a forward pass in a *worker* kills the worker while ``marker`` exists.

    With ``once`` the marker is removed first, so only the first attempt dies.
    """

    def __init__(self, marker, once=True, parent_pid=None):
        super().__init__()
        self.marker, self.once = str(marker), once
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid

    def forward(self, x):
        if self.training and os.getpid() != self.parent_pid and os.path.exists(self.marker):
            if self.once:
                try:
                    os.unlink(self.marker)
                except FileNotFoundError:
                    return x  # another worker took the hit
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    def backward(self, dy):
        return dy


class Boom(Layer):
    """Identity that raises in training: a buggy layer."""

    def forward(self, x):
        if self.training:
            raise ZeroDivisionError("boom in a layer")
        return x

    def backward(self, dy):
        return dy


class Sleepy(Layer):
    """Identity that sleeps ``seconds`` in a *worker* whenever its input equals ``trigger``.

    It makes one chosen micro-batch the last to finish, so the others' workers sit idle.
    With ``after`` (a path), it first waits for that file to exist, so the sleep
    starts after an event of the test's choosing, however slow the host is.
    """

    #: a liveness bound on waiting for ``after``, not a speed requirement.
    WAIT_AT_MOST = 60

    def __init__(self, trigger, seconds=0.5, parent_pid=None, after=None):
        super().__init__()
        self.trigger, self.seconds = list(trigger), seconds
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid
        self.after = None if after is None else str(after)

    def forward(self, x):
        if self.training and os.getpid() != self.parent_pid and list(x) == self.trigger:
            if self.after is not None:
                self._wait_for_after()
            time.sleep(self.seconds)
        return x

    def _wait_for_after(self):
        deadline = time.monotonic() + self.WAIT_AT_MOST
        while not os.path.exists(self.after):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.after} did not appear within {self.WAIT_AT_MOST} s")
            time.sleep(0.005)

    def backward(self, dy):
        return dy
