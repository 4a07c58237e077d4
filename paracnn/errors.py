"""Errors meant for people: every one says what is wrong, where, and how to fix it.

Anything derived from :class:`ParacnnError` is a user mistake or an
environmental problem, and the CLI prints it as one line (no traceback unless
``--debug``) and exits with its ``exit_code``: 2 for bad input, 1 for a run
that failed (:class:`TaskError`, divergence), 3 for workers that kept dying.
Anything else is a bug in paracnn. ``docs/errors.md`` lists them all.
"""


class ParacnnError(Exception):
    """Base class of all errors paracnn reports to the user."""

    exit_code = 2


class LocatedError(ParacnnError):
    """An error about one place of a config; :meth:`Config.locate <paracnn.config.Config.locate>` finds it.

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

    @property
    def key_path(self):
        """``key`` as a tuple, to append to the path of the mapping it is relative to.

        ``None`` gives ``()``, a name or index ``"filters"`` gives ``("filters",)``, and a
        path stays as it is. A composite layer's error, for instance, is re-raised
        at ``("layers", i) + error.key_path``.
        """
        key = self.key
        if key is None:
            return ()
        return (key,) if isinstance(key, (str, int)) else tuple(key)


class ConfigError(LocatedError):
    """A configuration value is wrong (arguments as :class:`LocatedError`)."""


class ShapeError(ConfigError):
    """A layer cannot accept the shape that reaches it."""


class ModelTooLarge(ConfigError):
    """The model has more parameters than ``train.max_params`` (or than memory holds).

    ``total`` is the parameter count reached when building stopped (a lower bound).
    """

    def __init__(self, message, key=None, where=None, total=None):
        super().__init__(message, key=key, where=where)
        self.total = total


class PluginFailed(ConfigError):
    """A layer's constructor or ``build()`` raised, or ``build()`` returned something other than a shape.

    The config adds the layer's ``FILE:LINE:COL`` and the distribution its type comes from
    (:meth:`with_origin`). ``type_name`` is the layer's ``type:``.
    """

    def __init__(self, message, key=None, where=None, type_name=None):
        super().__init__(message, key=key, where=where)
        self.type_name = type_name

    def with_origin(self, registry):
        """The same error, naming the distribution that registers its layer type in ``registry``."""
        try:
            entry = registry.entry(self.type_name)
            origin = f"distribution '{entry.distribution}' {entry.version}".rstrip()
        except (RegistryError, AttributeError):  # NOTE: tests may resolve with a plain function
            origin = "a distribution that is no longer installed"
        return PluginFailed(f"{self.message}; layer type '{self.type_name}' comes from {origin}: fix "
                            f"the layer's settings, or report it to that plugin's authors",
                            key=self.key, type_name=self.type_name)


class RegistryError(ParacnnError):
    """A layer type cannot be found, is ambiguous, or its plugin is broken."""


class DataError(ParacnnError):
    """A dataset file is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(ParacnnError):
    """A checkpoint cannot be read, or does not match the model."""


class RunError(ParacnnError):
    """The run cannot write its folder: permissions, a full disk, a file in the way."""


class TaskError(ParacnnError):
    """A training or evaluation task raised: a bug, usually in a layer. Names the layer; exit 1."""

    exit_code = 1


class LayerContractError(LocatedError):
    """A layer of the model breaks the layer protocol (see :mod:`paracnn.contract`); exit 1.

    Its ``key`` is the layer's path, ``("model", "layers", i)``, so the message
    cites the layer's YAML line.
    """

    exit_code = 1
