"""The ``model:`` section: ``input_shape:`` and a list of registered layers.

Each layer's keys are checked against its constructor's signature, so a plugin
layer is validated exactly like a built-in one, and the resolved config lists
every argument (defaults filled in) in the constructor's order.
"""

import inspect
import math
import numbers

from ..errors import ConfigError, ParacnnError, PluginFailed, RegistryError
from ..model import Sequential
from .checks import check_keys, check_shape, kind_of

MODEL_KEYS = ("input_shape", "layers")


def validate_model(model, registry):
    if not isinstance(model, dict):
        raise ConfigError(f"model: must be a mapping with input_shape: and layers:, got {kind_of(model)}",
                          key=("model",))
    check_keys(model, MODEL_KEYS, ("model",), "model")
    for key in MODEL_KEYS:
        if key not in model:
            raise ConfigError(f"model: has no {key}:", key=("model",))
    shape = check_shape(("model", "input_shape"), model["input_shape"])
    layers = model["layers"]
    if not isinstance(layers, list) or not layers:
        raise ConfigError("model.layers must be a non-empty list of layers, each a mapping with "
                          "type:", key=("model", "layers"))
    out = [_validate_layer(i, spec, registry) for i, spec in enumerate(layers)]
    # Constructing the layers runs each one's own argument checks (nothing is allocated yet).
    resolver = _CountingResolver(registry)
    try:
        Sequential.from_config({"input_shape": shape, "layers": out}, resolver)
    except ConfigError as e:
        raise ConfigError(e.message, key=("model",) + e.key_path) from None
    except ParacnnError:
        raise
    except (Exception, SystemExit) as e:  # a plugin layer that does not raise ConfigError
        i = resolver.calls - 1
        raise PluginFailed(f"layers[{i}] {out[i]['type']}: its constructor raised {type(e).__name__}: {e}",
                           key=("model", "layers", i), type_name=out[i]["type"]).with_origin(registry) from e
    return {"input_shape": shape, "layers": out}


class _CountingResolver:
    """``registry.resolve`` that counts its calls, to tell which layer a constructor failed in."""

    def __init__(self, registry):
        self.registry, self.calls = registry, 0

    def __call__(self, name):
        self.calls += 1
        return self.registry.resolve(name)


def _validate_layer(i, spec, registry):
    path = ("model", "layers", i)
    if not isinstance(spec, dict):
        raise ConfigError(f"layers[{i}] must be a mapping with type: and the layer's settings, "
                          f"got {kind_of(spec)}", key=path)
    if "type" not in spec:
        raise ConfigError(f"layers[{i}] has no type:; 'paracnn layers' lists the layer types",
                          key=path)
    try:
        cls = registry.resolve(spec["type"])
    except RegistryError as e:
        raise ConfigError(f"layers[{i}]: {e}", key=path + ("type",)) from None
    allowed, required, defaults, open_ended = _signature(cls)
    what = f"layers[{i}] {spec['type']}"
    if not open_ended:
        check_keys(spec, ("type",) + allowed, path, what, shown=allowed)
    missing = [k for k in required if k not in spec]
    if missing:
        raise ConfigError(f"{what} needs {' and '.join(k + ':' for k in missing)}", key=path)
    # Resolved layers list every argument, in the constructor's order.
    out = {"type": spec["type"]}
    for key in allowed:
        if key in spec or key in defaults:
            out[key] = spec[key] if key in spec else defaults[key]
    out.update((k, v) for k, v in spec.items() if k not in out)
    return out


def _signature(cls):
    """``(allowed, required, yaml-safe defaults, takes **kwargs)`` of a layer's constructor."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return (), (), {}, True
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    defaults = {p.name: _plain(p.default) for p in named
                if p.default is not p.empty and _yaml_safe(p.default)}
    return (tuple(p.name for p in named), tuple(p.name for p in named if p.default is p.empty),
            defaults, any(p.kind is p.VAR_KEYWORD for p in params))


def _yaml_safe(value):
    if value is None or isinstance(value, (bool, str, numbers.Real)):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(map(_yaml_safe, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _yaml_safe(v) for k, v in value.items())
    return False


def _plain(value):
    """Tuples to lists, so the value dumps as plain YAML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
