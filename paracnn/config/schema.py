"""The strict schema: three sections, every key known, every value checked, defaults filled in.

:func:`validate` turns the raw mapping into ``{"model": ..., "data": ...,
"train": ...}``. Errors carry a key path; :class:`~paracnn.config.Config`
turns it into ``FILE:LINE:COL``.
"""

import copy
import math
import multiprocessing
from functools import partial

from ..data.augment import AUGMENT_RULES
from ..data.datasets import DATASETS, DEFAULTS as DATA_DEFAULTS
from ..data.imageset import NORMALIZATIONS
from ..data.label_noise import LABEL_NOISE_RULE
from ..training import early_stopping
from ..errors import ConfigError
from ..intervals import check_every
from ..layer import check_bool, check_float, check_int, format_shape
from ..limits import MAX_WORKERS
from ..optim.rules import DEFAULTS as OPTIMIZER_DEFAULTS, RULES as OPTIMIZER_RULES
from ..optim.rules import check_combination
from ..optim.schedule import SCHEDULE_RULES, SCHEDULES, WARMUP_RULE, check_schedule  # noqa: F401
from .checks import (apply_rules, check_at, check_choice, check_keys, check_shape, check_text,
                     check_url, kind_of, nullable, optional_positive_int, positive_int, with_defaults)
from .model_schema import validate_model

SECTIONS = ("model", "data", "train")

# NOTE: the optimiser's keys and defaults are paracnn.optim's; this order is the resolved config's.
TRAIN_DEFAULTS = {
    "epochs": 1, "batch_size": 64,
    **{k: OPTIMIZER_DEFAULTS[k] for k in ("optimizer", "lr", "momentum", "nesterov", "weight_decay")},
    "schedule": "constant", "seed": 0, "workers": 0,
    "micro_batch": None, "clip_grad_norm": None, "eval_batch": None, "start_method": None,
    "max_params": None, "max_worker_failures": 3, "worker_timeout": 300.0,
    "checkpoint_every": "5m", "log_every": None,
    "betas": OPTIMIZER_DEFAULTS["betas"], "eps": OPTIMIZER_DEFAULTS["eps"], "warmup_steps": 0,
    "backend": "local", "ray_address": None,
    "early_stopping": None,
}
DATASET_IMAGES = {"mnist": ((1, 28, 28), 10), "fashion-mnist": ((1, 28, 28), 10)}
START_METHODS = ("fork", "spawn", "forkserver")


def _check_start_method(name, value):
    check_choice(name, value, START_METHODS)
    available = multiprocessing.get_all_start_methods()
    if value not in available:
        raise ConfigError(f"{name} '{value}' is not available on this platform; use one of "
                          f"{', '.join(available)}")
    return value


def _check_workers(name, value):
    """``auto`` (see paracnn/workers.py) or a count from 0 (in-process) to :data:`~paracnn.limits.MAX_WORKERS`."""
    if value == "auto":
        return value
    if isinstance(value, str):
        raise ConfigError(f"{name} must be a number of worker processes or auto, got {value!r}")
    return check_int(name, value, minimum=0, maximum=MAX_WORKERS)


# Each rule is called as rule(dotted_name, value); see paracnn/config/checks.py.
TRAIN_RULES = {
    "epochs": positive_int,
    "batch_size": positive_int,
    **{k: OPTIMIZER_RULES[k] for k in ("optimizer", "lr", "momentum", "nesterov", "weight_decay")},
    "seed": partial(check_int, minimum=0),
    "workers": _check_workers,
    "micro_batch": optional_positive_int,
    "clip_grad_norm": partial(nullable, partial(check_float, low=0.0, low_open=True)),
    "eval_batch": optional_positive_int,
    "start_method": partial(nullable, _check_start_method),
    "max_params": optional_positive_int,
    "max_worker_failures": partial(check_int, minimum=0),
    "worker_timeout": partial(check_float, low=0.0),
    "checkpoint_every": check_every,
    "log_every": optional_positive_int,
    "betas": OPTIMIZER_RULES["betas"],
    "eps": OPTIMIZER_RULES["eps"],
    "warmup_steps": WARMUP_RULE,
    "backend": partial(check_choice, options=("local", "ray")),
    "ray_address": partial(nullable, check_text),
}
DATA_RULES = {
    "dataset": partial(check_choice, options=DATASETS),
    "dir": partial(nullable, check_text),
    "download": check_bool,
    "mirror": partial(nullable, check_url),
    "train_limit": optional_positive_int,
    "test_limit": optional_positive_int,
    "validation": partial(check_float, low=0.0, high=1.0, high_open=True),
    "normalize": partial(check_choice, options=NORMALIZATIONS),
    "mean": check_float,
    "std": partial(check_float, low=0.0, low_open=True),
    "label_noise": LABEL_NOISE_RULE,
}
SYNTHETIC_RULES = {
    "train_size": positive_int,
    "test_size": positive_int,
    "num_classes": partial(check_int, minimum=2),
}


def validate(raw, registry):
    if raw is None:
        raise ConfigError("the config is empty; it needs at least a model: section", key=())
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping with model:, data: and train: sections, "
                          f"got {kind_of(raw)}", key=())
    check_keys(raw, SECTIONS, (), "the config")
    if "model" not in raw:
        raise ConfigError("the config has no model: section; add one with input_shape: and "
                          "layers:", key=())
    # Sections are checked in file order, so the first error reported is the first in the file.
    validators = {"model": validate_model, "data": validate_data, "train": _validate_train}
    done = {name: validators[name](raw.get(name), registry)
            for name in dict.fromkeys([*raw, *SECTIONS])}
    model, data, train = done["model"], done["data"], done["train"]
    train["early_stopping"] = _early_stopping(train["early_stopping"], data)
    image_shape = dataset_info(data)[0]
    want = tuple(model["input_shape"])
    if want != image_shape and want != (math.prod(image_shape),):
        raise ConfigError(
            f"model.input_shape {format_shape(want)} does not match the {data['dataset']} images "
            f"{format_shape(image_shape)}; use input_shape: {list(image_shape)}",
            key=("model", "input_shape"))
    return {"model": model, "data": data, "train": train}


def _early_stopping(value, data):
    """``train.early_stopping``: null, or a mapping completed from :data:`early_stopping.DEFAULTS`."""
    path = ("train", "early_stopping")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"train.early_stopping must be a mapping such as {{monitor: val_loss, "
                          f"patience: 2}}, got {kind_of(value)}", key=path)
    check_keys(value, tuple(early_stopping.DEFAULTS), path, "train.early_stopping")
    if data["validation"] == 0:
        raise ConfigError(early_stopping.NO_VALIDATION, key=path)
    return apply_rules({**early_stopping.DEFAULTS, **value}, early_stopping.RULES,
                        "train.early_stopping", path=path, present=value)


def _section(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a mapping of settings, got {kind_of(value)}", key=(name,))
    return value


# -- train: ------------------------------------------------------------------------

def _validate_train(train, registry=None):
    train = _section("train", train)
    out = apply_rules(with_defaults(train, TRAIN_DEFAULTS, "train"), TRAIN_RULES, "train")
    try:
        check_combination(out, prefix="train.")
    except ConfigError as e:
        raise ConfigError(e.message, key=("train", e.key) if e.key in train else ("train",)) from None
    out["schedule"] = _schedule(out["schedule"], out["lr"])
    return out


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
    kind = check_at(kind_path, check_choice, spec["type"], tuple(SCHEDULES))
    check_keys(spec, ("type",) + tuple(SCHEDULES[kind]), path, f"a {kind} schedule")
    try:  # NOTE: the values' rules are paracnn.optim.schedule's, as for a Schedule built in code
        return check_schedule(spec, lr, name="train.schedule", lr_name="train.lr")
    except ConfigError as e:
        raise ConfigError(e.message, key=path + (e.key,) if e.key in spec else path) from None


# -- data: -------------------------------------------------------------------------

def data_defaults():
    """A copy of the ``data:`` defaults, which :mod:`paracnn.data` owns."""
    return copy.deepcopy(DATA_DEFAULTS)


def validate_data(data, registry=None):
    data = _section("data", data)
    defaults = data_defaults()
    out = with_defaults(data, defaults, "data")
    # NOTE: keys the data package adds that are unknown here pass through unchecked.
    out = apply_rules(out, DATA_RULES, "data")
    if "synthetic" in out:
        out["synthetic"] = _synthetic(out["synthetic"], defaults.get("synthetic") or {})
    if "augment" in out:
        out["augment"] = _augment(out["augment"], defaults["augment"])
    return out


def _augment(value, defaults):
    path = ("data", "augment")
    if not isinstance(value, dict):
        raise ConfigError(f"data.augment must be a mapping such as {{jitter: 0.1}}, got "
                          f"{kind_of(value)}", key=path)
    check_keys(value, tuple(defaults), path, "data.augment")
    return apply_rules({**defaults, **value}, AUGMENT_RULES, "data.augment", path=path,
                        present=value)


def _synthetic(value, defaults):
    path = ("data", "synthetic")
    if not isinstance(value, dict):
        raise ConfigError(f"data.synthetic must be a mapping, got {kind_of(value)}", key=path)
    check_keys(value, tuple(defaults), path, "data.synthetic")
    out = apply_rules({**copy.deepcopy(defaults), **value}, SYNTHETIC_RULES, "data.synthetic",
                       path=path)
    out["image_shape"] = check_shape(path + ("image_shape",), out["image_shape"])
    return out


def dataset_info(data):
    """``(image_shape, num_classes)`` of the configured dataset."""
    if data["dataset"] == "synthetic":
        s = data["synthetic"]
        return tuple(s["image_shape"]), s["num_classes"]
    return DATASET_IMAGES[data["dataset"]]
