"""Configs: YAML with ``FILE:LINE:COL`` errors, a strict schema, and ``--set`` overrides.

A config has three sections (``docs/config.md`` documents every key)::

    model: {input_shape: [1, 28, 28], layers: [{type: conv2d, filters: 6, kernel_size: 5}, ...]}
    data:  {dataset: mnist, ...}
    train: {epochs: 1, lr: 0.05, ...}

Loading keeps the position of every mapping key and list item, so any
:class:`~paracnn.errors.ConfigError` (whose ``key`` is a path such as
``("model", "layers", 3, "filters")``) is reported as one line starting
``FILE:LINE:COL:``. Values set with ``--set`` are reported against the
override instead (``--set train.lr=abc: ...``).

The YAML is read safely: plain tags only, and aliases may not expand the
document past :data:`MAX_NODES` values (no "billion laughs").

Example::

    config = load_config("configs/lenet.yaml", overrides=["train.lr=0.01"])
    model = config.build_model()        # shapes inferred, parameters created
"""

import copy
import difflib
import inspect
import math
import multiprocessing
import numbers
import re
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import yaml

from . import __version__
from .data.datasets import DATASETS, DEFAULTS as DATA_DEFAULTS
from .data.imageset import NORMALIZATIONS
from .errors import ConfigError, RegistryError
from .layer import check_bool, check_float, check_int, format_shape
from .model import Sequential
from .registry import get_registry

#: aliases may not expand a config past this many values.
MAX_NODES = 100_000
MAX_DEPTH = 50
MAX_BYTES = 1_000_000

SECTIONS = ("model", "data", "train")
MODEL_KEYS = ("input_shape", "layers")

TRAIN_DEFAULTS = {
    "epochs": 1, "batch_size": 64, "optimizer": "sgd", "lr": 0.01, "momentum": 0.0,
    "nesterov": False, "weight_decay": 0.0, "schedule": "constant", "seed": 0, "workers": 0,
    "micro_batch": None, "clip_grad_norm": None, "eval_batch": None, "start_method": None,
}
DATASET_IMAGES = {"mnist": ((1, 28, 28), 10), "fashion-mnist": ((1, 28, 28), 10)}
START_METHODS = ("fork", "spawn", "forkserver")


# -- YAML with positions -------------------------------------------------------

_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float, as YAML 1.2 does (1.1 says string)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


class _Builder:
    """Plain dicts and lists from a composed YAML node graph, recording positions."""

    def __init__(self, name):
        self.name, self.marks, self.count, self.active = name, {}, 0, set()
        self.scalars = _Loader("")

    def error(self, node, message):
        m = node.start_mark
        return ConfigError(message, where=f"{self.name}:{m.line + 1}:{m.column + 1}")

    def build(self, node, path):
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(node, f"the config expands to more than {MAX_NODES} values through "
                                   f"aliases (&anchor/*alias); refusing it")
        if len(path) > MAX_DEPTH:
            raise self.error(node, f"the config is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.scalars.construct_object(node)
            except yaml.MarkedYAMLError as e:
                raise self.error(node, f"{e.problem} (configs use plain YAML values only)") from None
        if id(node) in self.active:
            raise self.error(node, "an alias refers to the mapping or list that contains it")
        if node.tag not in (_MAP, _SEQ):
            raise self.error(node, f"tag '{node.tag}' is not allowed; configs use plain YAML only")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.marks[path + (i,)] = _pos(item)
                    out.append(self.build(item, path + (i,)))
                return out
            out = {}
            for knode, vnode in self.pairs(node):
                key = self.build(knode, path + ("<key>",))
                if not isinstance(key, str):
                    raise self.error(knode, f"keys must be names, got {key!r}; quote it if you meant "
                                            f"the text '{knode.value}'")
                if key in out:
                    first = self.marks[path + (key,)][0]
                    raise self.error(knode, f"duplicate key '{key}' (first given on line {first})")
                self.marks[path + (key,)] = _pos(knode)
                out[key] = self.build(vnode, path + (key,))
            return out
        finally:
            self.active.discard(id(node))

    def pairs(self, node):
        """The (key, value) node pairs of a mapping, with ``<<`` merge keys applied."""
        own, merged = [], []
        for knode, vnode in node.value:
            if knode.tag != _MERGE:
                own.append((knode, vnode))
                continue
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise self.error(src, "'<<' merges only mappings")
                merged.extend(self.pairs(src))
        names = {k.value for k, _ in own}
        for knode, vnode in merged:
            if knode.value not in names:
                names.add(knode.value)
                own.append((knode, vnode))
        return own


def _pos(node):
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_yaml(text, name):
    """``(data, marks)``: plain data, and ``{path: (line, col)}`` of every key and item."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{name}: the config is larger than {MAX_BYTES} bytes; refusing it")
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        context = f" ({e.context}, line {e.context_mark.line + 1})" if e.context and e.context_mark else ""
        msg = " ".join(f"invalid YAML: {e.problem}{context}".split())
        raise ConfigError(msg, where=f"{name}:{mark.line + 1}:{mark.column + 1}") from None
    except yaml.YAMLError as e:  # reader errors: non-printable characters and the like
        line, col = _line_col(text, getattr(e, "position", 0))
        raise ConfigError(" ".join(f"invalid YAML: {e}".split()), where=f"{name}:{line}:{col}") from None
    except RecursionError:
        raise ConfigError(f"{name}: the config is nested too deeply") from None
    if root is None:
        return None, {(): (1, 1)}
    builder = _Builder(name)
    builder.marks[()] = _pos(root)
    return builder.build(root, ()), builder.marks


def _line_col(text, index):
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


# -- --set overrides -------------------------------------------------------------

@dataclass
class Override:
    """``train.lr=0.01``: ``path`` ``("train", "lr")`` gets ``value``; errors cite ``label``."""

    label: str
    path: tuple
    value: object
    created: tuple = None  # the shortest path this override put in place


def parse_override(text, label=None):
    """Parse ``a.b[0].c=VALUE`` (VALUE is read as YAML) into an :class:`Override`."""
    label = label or f"--set {text}"
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("expected KEY=VALUE, for example train.lr=0.01", where=label)
    path = []
    for part in key.strip().split("."):
        m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
        if not m or not (m.group(1) or m.group(2)):
            raise ConfigError(f"bad key '{key}'; write dotted names such as train.lr or "
                              f"model.layers.0.filters", where=label)
        if m.group(1):
            path.append(int(m.group(1)) if m.group(1).isdigit() else m.group(1))
        path.extend(int(i) for i in re.findall(r"\d+", m.group(2)))
    try:
        parsed, _ = parse_yaml(value, "value")
    except ConfigError as e:
        raise ConfigError(f"the value is not valid YAML: {e.message}", where=label) from None
    return Override(label, tuple(path), parsed)


def apply_override(raw, ov):
    """Set ``ov.value`` at ``ov.path`` in ``raw``, creating missing mappings."""
    node = raw
    for depth, step in enumerate(ov.path):
        here = _dotted(ov.path[:depth]) or "the config"
        last = depth == len(ov.path) - 1
        if isinstance(node, list):
            if not isinstance(step, int):
                raise ConfigError(f"{here} is a list; index it with a number such as "
                                  f"{_dotted(ov.path[:depth] + (0,))}", where=ov.label)
            if not 0 <= step < len(node):
                raise ConfigError(f"{here} has {len(node)} items, so index {step} is out of range",
                                  where=ov.label)
        elif isinstance(node, dict):
            if isinstance(step, int):
                raise ConfigError(f"{here} is a mapping, not a list", where=ov.label)
            if depth == 0 and step not in SECTIONS:
                raise ConfigError(_unknown_key_message(step, SECTIONS, "the config"), where=ov.label)
            if step not in node:
                ov.created = ov.created or ov.path[:depth + 1]
                node[step] = {}
        else:
            raise ConfigError(f"{here} is {node!r}, which has no key '{step}'", where=ov.label)
        if last:
            node[step] = copy.deepcopy(ov.value)
            ov.created = ov.created or ov.path
        node = node[step]
    return raw


# -- the loaded config -------------------------------------------------------------

class Config:
    """A validated config: ``.data`` holds the sections model/data/train, fully defaulted.

    Attributes:
        path: the file name errors cite (or a name such as ``<dict>``).
        data: ``{"model": ..., "data": ..., "train": ...}``, plain YAML-safe values.
        raw: the mapping as read, after overrides.
        overrides: the :class:`Override` objects applied.
    """

    def __init__(self, raw, path, marks=None, overrides=(), registry=None):
        self.raw, self.path, self.marks = raw, path, dict(marks or {})
        self.overrides = list(overrides)
        self._registry = registry
        self.data = self.locating(_validate, raw, self.registry)

    @property
    def registry(self):
        if self._registry is None:
            self._registry = get_registry()
        return self._registry

    def __getstate__(self):
        # The registry holds imported plugin classes; a worker finds its own.
        return {**self.__dict__, "_registry": None}

    def where(self, key):
        """``FILE:LINE:COL`` of the deepest node of ``key`` present in the file, or the --set."""
        key = tuple(key)
        for ov in reversed(self.overrides):
            if ov.created is not None and key[:len(ov.created)] == ov.created:
                return ov.label
        for n in range(len(key), -1, -1):
            if key[:n] in self.marks:
                line, col = self.marks[key[:n]]
                return f"{self.path}:{line}:{col}"
        return self.path

    def locate(self, error, prefix=()):
        """Return ``error`` with ``where`` filled in from its ``key`` (prefixed by ``prefix``)."""
        if error.where:
            return error
        key = tuple(prefix) + _as_path(error.key)
        message = error.message
        later = [ov.label for ov in self.overrides
                 if len(key) >= 2 and ov.path[:len(key)] == key and len(ov.path) > len(key)]
        if later and self.where(key) not in later:
            message += f" (after {', '.join(later)})"
        return type(error)(message, key=key, where=self.where(key))

    def locating(self, fn, *args, prefix=()):
        try:
            return fn(*args)
        except ConfigError as e:
            raise self.locate(e, prefix) from None

    @property
    def image_shape(self):
        return _dataset_info(self.data["data"])[0]

    @property
    def num_classes(self):
        return _dataset_info(self.data["data"])[1]

    def build_model(self, seed=None):
        """A built :class:`~paracnn.model.Sequential`; shape errors point at the layer's line."""
        model = self.locating(Sequential.from_config, self.data["model"], self.registry.resolve,
                              prefix=("model",))
        seed = self.data["train"]["seed"] if seed is None else seed
        out = self.locating(model.build, seed, prefix=("model",))
        if tuple(out) != (self.num_classes,):
            last = len(model.layers) - 1
            raise self.locate(ConfigError(
                f"the model's output is {format_shape(out)} but the {self.data['data']['dataset']} "
                f"dataset has {self.num_classes} classes; end the model with a dense layer of "
                f"{self.num_classes} units", key=("model", "layers", last, "units")))
        return model

    def to_yaml(self):
        """The resolved config as YAML, for saving next to a run."""
        header = f"# resolved by paracnn {__version__} from {self.path}\n"
        return header + yaml.dump(self.data, Dumper=_Dumper, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain values (shapes) which read best as ``[1, 28, 28]``."""

    def represent_list(self, data):
        flat = not any(isinstance(v, (list, dict)) for v in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _Dumper.represent_list)


def load_config(path, overrides=(), registry=None):
    """Read, override and validate the YAML file ``path``; errors start ``FILE:LINE:COL:``.

    ``overrides`` are ``KEY=VALUE`` strings (as given to ``--set``) or
    :class:`Override` objects, applied in order.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config '{name}': {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"cannot read config '{name}': it is not UTF-8 text ({e.reason})") from None
    raw, marks = parse_yaml(text, name)
    return _make(raw, name, marks, overrides, registry)


def config_from_dict(d, name="<dict>", overrides=(), registry=None):
    """Validate an already-parsed config (a checkpoint's, a test's); errors cite ``name``."""
    return _make(copy.deepcopy(d), name, {}, overrides, registry)


def _make(raw, name, marks, overrides, registry):
    ovs = [o if isinstance(o, Override) else parse_override(o) for o in overrides]
    if raw is None and ovs:
        raw = {}
    for ov in ovs:
        if not isinstance(raw, dict):
            break  # validation reports the top level
        apply_override(raw, ov)
    return Config(raw, name, marks, ovs, registry)


# -- the schema --------------------------------------------------------------------

def _validate(raw, registry):
    if raw is None:
        raise ConfigError("the config is empty; it needs at least a model: section", key=())
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping with model:, data: and train: sections, "
                          f"got {_kind(raw)}", key=())
    _check_keys(raw, SECTIONS, (), "the config")
    if "model" not in raw:
        raise ConfigError("the config has no model: section; add one with input_shape: and "
                          "layers:", key=())
    # Sections are checked in file order, so the first error reported is the first in the file.
    validators = {"model": _validate_model, "data": _validate_data, "train": _validate_train}
    done = {name: validators[name](raw.get(name), registry)
            for name in dict.fromkeys([*raw, *SECTIONS])}
    model, data, train = done["model"], done["data"], done["train"]
    image_shape = _dataset_info(data)[0]
    want = tuple(model["input_shape"])
    if want != image_shape and want != (math.prod(image_shape),):
        raise ConfigError(
            f"model.input_shape {format_shape(want)} does not match the {data['dataset']} images "
            f"{format_shape(image_shape)}; use input_shape: {list(image_shape)}",
            key=("model", "input_shape"))
    return {"model": model, "data": data, "train": train}


def _section(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a mapping of settings, got {_kind(value)}", key=(name,))
    return value


def _validate_model(model, registry):
    if not isinstance(model, dict):
        raise ConfigError(f"model: must be a mapping with input_shape: and layers:, got {_kind(model)}",
                          key=("model",))
    _check_keys(model, MODEL_KEYS, ("model",), "model")
    for key in MODEL_KEYS:
        if key not in model:
            raise ConfigError(f"model: has no {key}:", key=("model",))
    shape = _shape(("model", "input_shape"), model["input_shape"])
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
        raise ConfigError(e.message, key=("model",) + _as_path(e.key)) from None
    except (TypeError, ValueError) as e:  # a plugin layer that does not raise ConfigError
        i = resolver.calls - 1
        raise ConfigError(f"layers[{i}] {out[i]['type']}: {type(e).__name__}: {e}",
                          key=("model", "layers", i)) from None
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
                          f"got {_kind(spec)}", key=path)
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
        _check_keys(spec, ("type",) + allowed, path, what, shown=allowed)
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


def _validate_train(train, registry=None):
    train = _section("train", train)
    out = _apply_rules(_with_defaults(train, TRAIN_DEFAULTS, "train"), TRAIN_RULES, "train")
    if out["nesterov"] and out["momentum"] == 0.0:
        raise ConfigError("train.nesterov needs momentum > 0", key=("train", "nesterov"))
    out["schedule"] = _schedule(out["schedule"], out["lr"])
    return out


SCHEDULES = {"constant": {}, "step": {"step_size": 1, "gamma": 0.1}, "cosine": {"min_lr": 0.0}}


def _schedule(spec, lr):
    """Always a mapping in the resolved config: ``{type: step, step_size: 2, gamma: 0.1}``."""
    path = ("train", "schedule")
    if isinstance(spec, str):
        spec, kind_path = {"type": spec}, path
    elif isinstance(spec, dict):
        kind_path = path + ("type",)
        if "type" not in spec:
            raise ConfigError(f"train.schedule needs type: ({', '.join(SCHEDULES)})", key=path)
    else:
        raise ConfigError(f"train.schedule must be constant, {{type: step, step_size: N, gamma: g}} "
                          f"or {{type: cosine, min_lr: x}}, got {spec!r}", key=path)
    kind = _check(kind_path, _check_choice, spec["type"], tuple(SCHEDULES))
    _check_keys(spec, ("type",) + tuple(SCHEDULES[kind]), path, f"a {kind} schedule")
    out = {"type": kind, **SCHEDULES[kind], **{k: v for k, v in spec.items() if k != "type"}}
    _apply_rules(out, SCHEDULE_RULES, "train.schedule", path=path, present=spec)
    if kind == "cosine" and out["min_lr"] >= lr:
        raise ConfigError(f"train.schedule.min_lr must be below train.lr ({lr}), got "
                          f"{out['min_lr']}", key=path + ("min_lr",) if "min_lr" in spec else path)
    return out


def data_defaults():
    """A copy of the ``data:`` defaults, which :mod:`paracnn.data` owns."""
    return copy.deepcopy(DATA_DEFAULTS)


def _validate_data(data, registry=None):
    data = _section("data", data)
    defaults = data_defaults()
    out = _with_defaults(data, defaults, "data")
    # NOTE: keys the data package adds that are unknown here pass through unchecked.
    out = _apply_rules(out, DATA_RULES, "data")
    if "synthetic" in out:
        out["synthetic"] = _synthetic(out["synthetic"], defaults.get("synthetic") or {})
    return out


def _synthetic(value, defaults):
    path = ("data", "synthetic")
    if not isinstance(value, dict):
        raise ConfigError(f"data.synthetic must be a mapping, got {_kind(value)}", key=path)
    _check_keys(value, tuple(defaults), path, "data.synthetic")
    out = _apply_rules({**copy.deepcopy(defaults), **value}, SYNTHETIC_RULES, "data.synthetic",
                       path=path)
    out["image_shape"] = _shape(path + ("image_shape",), out["image_shape"])
    return out


def _dataset_info(data):
    """``(image_shape, num_classes)`` of the configured dataset."""
    if data["dataset"] == "synthetic":
        s = data["synthetic"]
        return tuple(s["image_shape"]), s["num_classes"]
    return DATASET_IMAGES[data["dataset"]]


# -- value rules: each check is called as check(dotted_name, value) ----------------

def _maybe(check, name, value):
    """``check`` that also accepts null."""
    return None if value is None else check(name, value)


def _check_choice(name, value, options):
    if value in options:
        return value
    close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}{hint}")


def _check_at_most(name, value, minimum, maximum):
    value = check_int(name, value, minimum)
    if value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def _check_start_method(name, value):
    _check_choice(name, value, START_METHODS)
    available = multiprocessing.get_all_start_methods()
    if value not in available:
        raise ConfigError(f"{name} '{value}' is not available on this platform; use one of "
                          f"{', '.join(available)}")
    return value


def _check_text(name, value):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _check_url(name, value):
    _check_text(name, value)
    if urlsplit(value).scheme not in ("http", "https", "file"):
        raise ConfigError(f"{name} must be an http(s):// or file:// URL, got {value!r}")
    return value


_positive_int = partial(check_int, minimum=1)
_optional_positive_int = partial(_maybe, _positive_int)

TRAIN_RULES = {
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "optimizer": partial(_check_choice, options=("sgd",)),
    "lr": partial(check_float, low=0.0, low_open=True),
    "momentum": partial(check_float, low=0.0, high=1.0, high_open=True),
    "nesterov": check_bool,
    "weight_decay": partial(check_float, low=0.0),
    "seed": partial(check_int, minimum=0),
    "workers": partial(_check_at_most, minimum=0, maximum=1024),
    "micro_batch": _optional_positive_int,
    "clip_grad_norm": partial(_maybe, partial(check_float, low=0.0, low_open=True)),
    "eval_batch": _optional_positive_int,
    "start_method": partial(_maybe, _check_start_method),
}
SCHEDULE_RULES = {
    "step_size": _positive_int,
    "gamma": partial(check_float, low=0.0, high=1.0, low_open=True),
    "min_lr": partial(check_float, low=0.0),
}
DATA_RULES = {
    "dataset": partial(_check_choice, options=DATASETS),
    "dir": partial(_maybe, _check_text),
    "download": check_bool,
    "mirror": partial(_maybe, _check_url),
    "train_limit": _optional_positive_int,
    "test_limit": _optional_positive_int,
    "validation": partial(check_float, low=0.0, high=1.0, high_open=True),
    "normalize": partial(_check_choice, options=NORMALIZATIONS),
    "mean": check_float,
    "std": partial(check_float, low=0.0, low_open=True),
}
SYNTHETIC_RULES = {
    "train_size": _positive_int,
    "test_size": _positive_int,
    "num_classes": partial(check_int, minimum=2),
}


def _apply_rules(mapping, rules, section, path=None, present=None):
    """Check every key of ``mapping`` that has a rule; errors point at the key.

    A key missing from ``present`` (a default) is blamed on the mapping itself.
    """
    path = (section,) if path is None else path
    for key, check in rules.items():
        if key in mapping:
            at = path + (key,) if present is None or key in present else path
            mapping[key] = _check(at, check, mapping[key], name=f"{section}.{key}")
    return mapping


# -- small checks ------------------------------------------------------------------

def _with_defaults(given, defaults, section):
    _check_keys(given, tuple(defaults), (section,), section)
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def _check_keys(mapping, allowed, path, what, shown=None):
    for key in mapping:
        if key not in allowed:
            raise ConfigError(_unknown_key_message(key, allowed, what, shown), key=path + (key,))


def _unknown_key_message(key, allowed, what, shown=None):
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    shown = allowed if shown is None else shown
    return f"unknown key '{key}' in {what}{hint} (allowed: {', '.join(shown) or 'none'})"


def _check(path, check, value, *args, name=None):
    """Run ``check(name, value, *args)``, re-keying its error to ``path``."""
    try:
        return check(name or _dotted(path), value, *args)
    except ConfigError as e:
        raise ConfigError(e.message, key=path) from None


def _shape(path, value):
    name = _dotted(path)
    if not isinstance(value, list) or len(value) not in (1, 3):
        raise ConfigError(f"{name} must be a list of 1 or 3 positive integers, such as [1, 28, 28], "
                          f"got {value!r}", key=path)
    return [_check(path + (i,), check_int, v, 1) for i, v in enumerate(value)]


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


def _as_path(key):
    if key is None:
        return ()
    return (key,) if isinstance(key, (str, int)) else tuple(key)


def _dotted(path):
    """``("model", "layers", 3, "filters")`` → ``model.layers[3].filters``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _kind(value):
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), repr(value))
