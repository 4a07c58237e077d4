"""A module no config or checkpoint may cause to be imported.

Configs and checkpoints name layer types, which are looked up in the registry
of installed entry points only. ``type: tests.faults.evil:Evil`` must be an
unknown layer type, never an import of this module: the bad-input tests check
that it is absent from ``sys.modules`` afterwards.
"""

from paracnn.layer import Layer

IMPORTED = True


class Evil(Layer):
    """Would run code at import time, if anything imported it."""
