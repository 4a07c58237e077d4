"""Layer types by name, discovered through the ``paracnn.layers`` entry-point group.

Built-in layers are entry points in paracnn's own ``pyproject.toml``, and a
plugin registers its layers in exactly the same way::

    [project.entry-points."paracnn.layers"]
    residual = "paracnn_extras.residual:Residual"

Discovery reads package metadata only; a layer's module is imported the first
time a config uses it (or when ``paracnn layers`` describes it). So a broken
plugin costs nothing until someone asks for one of its layers.

When two *different* distributions register the same name, using that name is
an error naming both; ``distribution:name`` (``paracnn:conv2d``,
``paracnn-extras:residual``) picks one explicitly. Distribution names compare
as PEP 503 does: case-insensitive, with ``-``, ``_`` and ``.`` equivalent.

``PARACNN_DISABLE_PLUGINS=1`` keeps the built-in layers (distribution
``paracnn``) only.

Example::

    registry = Registry()
    Conv2d = registry.resolve("conv2d")
    registry.names()          # ['avgpool2d', 'conv2d', ...]
"""

import difflib
import functools
import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from operator import attrgetter

from .errors import RegistryError

GROUP = "paracnn.layers"
BUILTIN_DIST = "paracnn"
DISABLE_ENV = "PARACNN_DISABLE_PLUGINS"
#: unknown-name errors list every available name only when there are this few.
_LIST_AT_MOST = 15


def normalize_dist(name):
    """PEP 503 normalisation: ``Paracnn_Extras`` and ``paracnn.extras`` are ``paracnn-extras``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def plugins_disabled(environ=None):
    value = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class LayerEntry:
    """One registration: layer ``name`` provided by ``distribution`` as ``value`` (``module:object``)."""

    name: str
    value: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint

    @property
    def dist_key(self):
        return normalize_dist(self.distribution)

    @property
    def qualified(self):
        return f"{self.distribution}:{self.name}"

    def load(self):
        try:
            obj = self.entry_point.load()
        except (Exception, SystemExit) as e:  # a plugin may fail in any way while importing, sys.exit too
            raise RegistryError(
                f"layer type '{self.name}' from distribution '{self.distribution}' "
                f"{self.version} ({self.value}) failed to import: {type(e).__name__}: {e}") from e
        if not (isinstance(obj, type) and all(callable(getattr(obj, m, None))
                                              for m in ("build", "forward", "backward"))):
            raise RegistryError(
                f"layer type '{self.name}' from distribution '{self.distribution}' "
                f"({self.value}) is not a layer class (it needs build, forward and backward)")
        return obj


def _as_entry(item):
    """Accept a LayerEntry, an EntryPoint carrying ``.dist``, or ``(EntryPoint, dist[, version])``."""
    if isinstance(item, LayerEntry):
        return item
    # NOTE: on Python 3.10 an EntryPoint is itself a tuple.
    if isinstance(item, tuple) and not isinstance(item, metadata.EntryPoint):
        ep, dist, version = (item + ("",))[:3]
    else:
        ep = item
        d = getattr(ep, "dist", None)
        dist = getattr(d, "name", None) or "<unknown distribution>"
        version = getattr(d, "version", "") or ""
    return LayerEntry(ep.name, ep.value, dist, version, ep)


def discover():
    """Every ``paracnn.layers`` entry point of the installed distributions."""
    if sys.version_info >= (3, 10):
        return [_as_entry(ep) for ep in metadata.entry_points(group=GROUP)]
    return discover_by_distribution()


def discover_by_distribution():
    """:func:`discover` for Python 3.9 (PyPy 7.3), distribution by distribution.

    3.9 has no ``entry_points(group=...)`` and its EntryPoint has no ``.dist``,
    so each entry point is paired here with the distribution that declares it.
    """
    return [_as_entry((ep, dist.metadata["Name"] or "<unknown distribution>", dist.version or ""))
            for dist in metadata.distributions()
            for ep in dist.entry_points if ep.group == GROUP]


class Registry:
    """Name → layer class, over a set of entry points.

    Args:
        entry_points: the registrations to use; by default those installed.
            Items are :class:`LayerEntry`, ``importlib.metadata.EntryPoint``
            objects (with ``.dist``), or ``(EntryPoint, dist_name[, version])``
            tuples, which lets tests inject fake plugins.
        disable_plugins: keep only distribution ``paracnn``; by default read
            from ``PARACNN_DISABLE_PLUGINS``.
    """

    def __init__(self, entry_points=None, disable_plugins=None):
        if disable_plugins is None:
            disable_plugins = plugins_disabled()
        self.plugins_disabled = disable_plugins
        entries = discover() if entry_points is None else [_as_entry(e) for e in entry_points]
        self._by_name = {}
        for entry in entries:
            if disable_plugins and entry.dist_key != BUILTIN_DIST:
                continue
            same_name = self._by_name.setdefault(entry.name, [])
            # NOTE: one distribution seen twice (editable install, a path listed
            # twice) is the same registration, not a clash.
            if all(e.dist_key != entry.dist_key for e in same_name):
                same_name.append(entry)
                same_name.sort(key=attrgetter("dist_key"))  # deterministic messages
        self._loaded = {}

    def names(self):
        """Sorted layer names, clashing ones included."""
        return sorted(self._by_name)

    def entries(self):
        """Every registration, sorted by name then distribution."""
        return [e for n in self.names() for e in self._by_name[n]]

    def clashes(self):
        """``{name: [distribution, ...]}`` for names registered by several distributions."""
        return {n: [e.distribution for e in es] for n, es in sorted(self._by_name.items()) if len(es) > 1}

    def entry(self, name):
        """The single registration ``name`` (or ``distribution:name``) refers to."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a layer type must be a non-empty string, got {name!r}")
        dist, _, bare = name.rpartition(":")
        candidates = self._by_name.get(bare)
        if not candidates:
            raise RegistryError(self._unknown_message(bare))
        if dist:
            for e in candidates:
                if e.dist_key == normalize_dist(dist):
                    return e
            raise RegistryError(
                f"distribution '{dist}' does not register layer type '{bare}'; it is registered by "
                f"{_quoted(e.distribution for e in candidates)}"
                + (" (plugins are disabled by PARACNN_DISABLE_PLUGINS)" if self.plugins_disabled else ""))
        if len(candidates) > 1:
            raise RegistryError(
                f"layer type '{bare}' is registered by several distributions: "
                f"{_quoted(e.distribution for e in candidates)}; choose one with "
                f"{' or '.join(repr(e.qualified) for e in candidates)}, or uninstall one of them")
        return candidates[0]

    def resolve(self, name):
        """Import (once) and return the class for ``name``; RegistryError if impossible."""
        entry = self.entry(name)
        key = (entry.dist_key, entry.name)
        if key not in self._loaded:
            self._loaded[key] = entry.load()
        return self._loaded[key]

    __call__ = resolve

    def describe(self):
        """One dict per registration for ``paracnn layers``; imports every layer module.

        Keys: name, qualified, distribution, version, value, description,
        error (None, or why the class could not be loaded), clash (the other
        distributions registering the same name).
        """
        rows = []
        for e in self.entries():
            description, error = "", None
            try:
                cls = self._loaded.get((e.dist_key, e.name)) or e.load()
                self._loaded[(e.dist_key, e.name)] = cls
                doc = (cls.__doc__ or "").strip()
                description = doc.splitlines()[0] if doc else cls.__name__
            except RegistryError as err:
                error = str(err)
            rows.append({
                "name": e.name, "qualified": e.qualified, "distribution": e.distribution,
                "version": e.version, "value": e.value, "description": description, "error": error,
                "clash": [o.distribution for o in self._by_name[e.name] if o is not e]})
        return rows

    def _unknown_message(self, name):
        names = self.names()
        lowered = {n.lower(): n for n in names}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
        msg = f"unknown layer type '{name}'"
        if close:
            msg += "; did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"
        else:
            msg += "."
        msg += (f" If '{name}' comes from a plugin, install it (pip install <plugin package>); "
                f"'paracnn layers' lists the installed layer types")
        if self.plugins_disabled:
            msg += " (plugins are disabled by PARACNN_DISABLE_PLUGINS)"
        if len(names) <= _LIST_AT_MOST:
            msg += f". Available: {', '.join(names) or 'none'}"
        return msg


def _quoted(names):
    return " and ".join(f"'{n}'" for n in names)


@functools.lru_cache(maxsize=None)
def _registry_for(disabled):
    return Registry(disable_plugins=disabled)


def get_registry():
    """The registry of installed layers, built once per PARACNN_DISABLE_PLUGINS setting."""
    return _registry_for(plugins_disabled())


def reset_registry():
    """Forget the cached registry (after installing a plugin in-process, or in tests)."""
    _registry_for.cache_clear()


def resolve_layer(name):
    """The layer class registered as ``name`` (or ``distribution:name``)."""
    return get_registry().resolve(name)
