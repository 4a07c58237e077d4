"""How often a run does something: every N optimiser steps, or every so many seconds.

``train.checkpoint_every`` takes either form: ``200`` (steps) or a duration
string, ``"90s"``, ``"5m"``, ``"1h"``; ``0`` or null means never. Steps count
the whole run (the global step), so a resumed run keeps the same rhythm.
"""

import re
import time

from .errors import ConfigError

#: seconds per unit of a duration string.
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh])\s*$")


def check_every(name, value):
    """A schema rule: null, a whole number of steps >= 0, or a duration such as ``"5m"``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DURATION.match(value):
        return value.strip()
    raise ConfigError(f"{name} must be a number of steps (e.g. 500), a duration (e.g. 90s, 5m "
                      f"or 1h), or 0 or null for never; got {value!r}")


class Every:
    """A clock that says when something is due, from a :func:`check_every` value.

    Args:
        value: steps (int), a duration string, or 0/None for never.

    Example::

        every = Every("5m")
        if every.due(global_step):
            save()
            every.reset()
    """

    def __init__(self, value):
        self.steps = self.seconds = None
        if isinstance(value, str):
            number, unit = _DURATION.match(value).groups()
            self.seconds = float(number) * UNITS[unit] or None
        elif value:
            self.steps = int(value)
        self.last = time.monotonic()

    @property
    def enabled(self):
        return bool(self.steps or self.seconds)

    def due(self, step):
        """True when ``step`` (the global step just taken) or the time since :meth:`reset` calls for it."""
        if self.steps:
            return step % self.steps == 0
        if self.seconds:
            return time.monotonic() - self.last >= self.seconds
        return False

    def reset(self):
        """Start the next interval now (after the thing was done)."""
        self.last = time.monotonic()
