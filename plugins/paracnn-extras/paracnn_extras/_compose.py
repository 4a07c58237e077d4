"""What composite layers share: inner layers built from YAML mappings, and a flat view of their parameters.

A composite layer (``residual``) holds ordinary layers, configured exactly as
the model's own ``layers:`` list and looked up in the same registry, so a
plugin's layers can sit inside a block as well as the built-ins.
"""

import difflib
import hashlib
import inspect
from collections.abc import MutableMapping

from paracnn.errors import ConfigError, RegistryError
from paracnn.registry import resolve_layer


def inner_layer(j, spec, key="layers"):
    """Construct inner layer ``j`` from its mapping; return ``(type_name, layer)``.

    Every :class:`ConfigError` carries the key path ``(key, j, ...)``: the
    model adds the block's own position in front, and the YAML loader turns the
    whole path into the ``FILE:LINE:COL`` of the inner line.
    """
    path, what = (key, j), f"{key}[{j}]"
    if not isinstance(spec, dict):
        raise ConfigError(f"{what} must be a mapping with type: and the layer's settings, "
                          f"got {spec!r}", key=path)
    if "type" not in spec:
        raise ConfigError(f"{what} has no type:; 'paracnn layers' lists the layer types", key=path)
    type_name = spec["type"]
    try:
        cls = resolve_layer(type_name)
    except RegistryError as e:
        raise ConfigError(f"{what}: {e}", key=path + ("type",)) from None
    what = f"{what} {type_name}"
    args = {k: v for k, v in spec.items() if k != "type"}
    _check_arguments(cls, args, path, what)
    try:
        return type_name, cls.from_config(args)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e.message}", key=path + e.key_path) from None
    except (TypeError, ValueError) as e:  # a layer that does not validate with ConfigError
        raise ConfigError(f"{what}: {type(e).__name__}: {e}", key=path) from None


def _check_arguments(cls, args, path, what):
    """Unknown and missing keys, reported the way the config loader reports the model's layers."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in args:
        if key not in named:
            close = difflib.get_close_matches(str(key), named, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{key}' in {what}{hint} "
                              f"(allowed: {', '.join(named) or 'none'})", key=path + (key,))
    missing = [p.name for p in params if p.default is p.empty and p.name in named
               and p.name not in args]
    if missing:
        raise ConfigError(f"{what} needs {' and '.join(k + ':' for k in missing)}", key=path)


def inner_seed(seed, j):
    """The seed of inner layer ``j`` for a sample whose block got ``seed`` (63 bits, or None).

    Hashed rather than ``seed * k + j``, so nested blocks keep seeds small and
    unrelated to the seeds the model hands to the layers around the block.
    """
    if seed is None:
        return None
    digest = hashlib.blake2b(f"paracnn-inner:{seed}:{j}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class FlatView(MutableMapping):
    """One mapping over the ``params`` (or ``grads``, ``param_shapes``) of several layers.

    Names get a prefix per layer (``layers.0.weight``, ``projection.weight``).
    Reading and writing go to the inner layer's own dict, so code that
    *replaces* a list (``Sequential.set_weights``, ``zero_grad``) and code
    that edits one in place (the gradient check) both stay consistent.

    Args:
        parts: ``[(prefix, layer), ...]``, shared with the owner, which updates
            it in place when it builds.
        attr: ``"params"``, ``"grads"`` or ``"param_shapes"``.
    """

    def __init__(self, parts, attr):
        self.parts = parts
        self.attr = attr

    def _locate(self, key):
        for prefix, layer in self.parts:
            if key.startswith(prefix):
                d, name = getattr(layer, self.attr), key[len(prefix):]
                if name in d:
                    return d, name
        raise KeyError(key)

    def __getitem__(self, key):
        d, name = self._locate(key)
        return d[name]

    def __setitem__(self, key, value):
        d, name = self._locate(key)
        d[name] = value

    def __delitem__(self, key):
        raise TypeError(f"cannot remove {key!r}: a composite layer's parameters belong to its "
                        f"inner layers")

    def __iter__(self):
        for prefix, layer in self.parts:
            for name in getattr(layer, self.attr):
                yield prefix + name

    def __len__(self):
        return sum(len(getattr(layer, self.attr)) for _, layer in self.parts)

    def __repr__(self):
        return repr(dict(self))
