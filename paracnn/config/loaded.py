"""The loaded config: :class:`Config`, :func:`load_config` and :func:`config_from_dict`.

Loading is read (:mod:`.yamlpos`), then override (:mod:`.overrides`), then
validate (:mod:`.schema`); :class:`Config` keeps the positions so that any
later error, a shape error from building the model included, cites
``FILE:LINE:COL`` or the ``--set`` that caused it.
"""

import copy

import yaml

from .. import __version__
from ..errors import ConfigError, ModelTooLarge, PluginFailed
from ..layer import format_shape
from ..data.datasets import dataset_size
from ..memory import MemoryPlan, available_memory, dataset_bytes, default_max_params, gb, training_bytes
from ..model import Sequential
from ..registry import get_registry
from .overrides import Override, apply_override, parse_override
from .schema import dataset_info, validate
from .yamlpos import MAX_BYTES, check_plain_data, parse_yaml


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
        self.data = self.locating(validate, raw, self.registry)

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
        key = tuple(prefix) + error.key_path
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
        return dataset_info(self.data["data"])[0]

    @property
    def num_classes(self):
        return dataset_info(self.data["data"])[1]

    def build_model(self, seed=None):
        """A built :class:`~paracnn.model.Sequential`; shape errors point at the layer's line."""
        model = self.locating(Sequential.from_config, self.data["model"], self.registry.resolve,
                              prefix=("model",))
        seed = self.data["train"]["seed"] if seed is None else seed
        limit = self.data["train"]["max_params"]
        plan = self._memory_plan(count_params=not limit)
        try:
            out = model.build(seed, limit or default_max_params(self._workers(), self._buffers()), plan)
        except ModelTooLarge as e:
            if e.total is None:  # refused by the memory plan: activations and the dataset
                message = f"{e.message}; use smaller images (model.input_shape), smaller layers or fewer workers"
            else:
                message = f"{e.message}: {self._memory_advice(limit, e.total)}"
            raise self.locate(ModelTooLarge(message, key=e.key), ("model",)) from None
        except PluginFailed as e:
            raise self.locate(e.with_origin(self.registry), ("model",)) from e
        except ConfigError as e:
            raise self.locate(e, ("model",)) from None
        if tuple(out) != (self.num_classes,):
            last = len(model.layers) - 1
            raise self.locate(ConfigError(
                f"the model's output is {format_shape(out)} but the {self.data['data']['dataset']} "
                f"dataset has {self.num_classes} classes; end the model with a dense layer of "
                f"{self.num_classes} units", key=("model", "layers", last, "units")))
        return model

    def _memory_plan(self, count_params):
        """The :class:`~paracnn.memory.MemoryPlan` of this config; the dataset alone is checked here."""
        samples, pixels = dataset_size(self.data["data"])
        plan = MemoryPlan.for_machine(workers=self._workers(), buffers=self._buffers(),
                                      dataset=dataset_bytes(samples, pixels), count_params=count_params)
        if not plan.fits(0, 0):
            key = ("data", "synthetic", "train_size") if self.data["data"]["dataset"] == "synthetic" else ("data",)
            raise self.locate(ModelTooLarge(
                f"the dataset of {samples:,} images of {pixels:,} pixels would need {plan.describe(0, 0)}; "
                f"use fewer samples", key=key))
        return plan

    def _workers(self):
        from ..workers import resolve_workers
        return resolve_workers(None, self.data["train"])

    def warnings(self):
        """One line per setting that has no effect (an optimiser key the optimiser ignores).

        Each starts with the key's ``FILE:LINE:COL`` (or its ``--set``), as an error would.
        """
        from ..optim import unused_settings
        return [f"{self.where(('train', key))}: warning: {line}"
                for key, line in unused_settings(self.data["train"], prefix="train.")]

    def _buffers(self):
        from ..optim import make_optimizer
        return len(make_optimizer(self.data["train"]).buffer_names)

    def _memory_advice(self, limit, total):
        if limit:
            return "make the model smaller, or raise train.max_params"
        workers = self._workers()
        return (f"training it would take about {gb(training_bytes(total, workers, self._buffers()))} GB as Python "
                f"float lists ({workers} workers) but {gb(available_memory())} GB of memory is "
                f"available; make the model smaller, or set train.max_params "
                f"(--set train.max_params=N) if you know it fits")

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
    check_plain_data(d, name)  # NOTE: before deepcopy, which recursion depth would stop
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
