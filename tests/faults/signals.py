"""A layer that interrupts its own run, for the Ctrl-C example of ``docs/errors.md``."""

import os
import signal

from paracnn.layer import Layer


class Interrupts(Layer):
    """Identity that sends SIGINT to its process at its first training forward while ``marker`` exists."""

    def __init__(self, marker):
        super().__init__()
        self.marker = str(marker)

    def forward(self, x):
        if self.training and os.path.exists(self.marker):
            os.unlink(self.marker)
            os.kill(os.getpid(), signal.SIGINT)
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"marker": self.marker}
