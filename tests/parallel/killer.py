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
    """

    def __init__(self, trigger, seconds=0.5, parent_pid=None):
        super().__init__()
        self.trigger, self.seconds = list(trigger), seconds
        self.parent_pid = os.getpid() if parent_pid is None else parent_pid

    def forward(self, x):
        if self.training and os.getpid() != self.parent_pid and list(x) == self.trigger:
            time.sleep(self.seconds)
        return x

    def backward(self, dy):
        return dy
