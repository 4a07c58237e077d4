"""Errors meant for people: every one says what is wrong, where, and how to fix it.

Anything derived from :class:`ParacnnError` is a user mistake or an
environmental problem, and the CLI prints it as one line with exit status 2
(no traceback unless ``--debug``). Anything else is a bug in paracnn.
"""


class ParacnnError(Exception):
    """Base class of all errors paracnn reports to the user."""

    exit_code = 2


class ConfigError(ParacnnError):
    """A configuration value is wrong.

    Args:
        message: what is wrong and how to fix it.
        key: the config key at fault, relative to the mapping being validated
            (for example ``"filters"`` of a layer). The YAML loader uses it to
            point at the exact line and column.
        where: a ``FILE:LINE:COL`` prefix, filled in by the loader.
    """

    def __init__(self, message, key=None, where=None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.where = where

    def __str__(self):
        return f"{self.where}: {self.message}" if self.where else self.message


class ShapeError(ConfigError):
    """A layer cannot accept the shape that reaches it."""


class RegistryError(ParacnnError):
    """A layer type cannot be found, is ambiguous, or its plugin is broken."""


class DataError(ParacnnError):
    """A dataset file is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(ParacnnError):
    """A checkpoint cannot be read, or does not match the model."""
