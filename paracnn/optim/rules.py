"""The rule of each ``train:`` optimiser value, in one place: the schema and the optimisers call these.

Each rule is ``rule(name, value)`` and returns the value checked (as the
schema's rules do); :func:`check_combination` holds the rules between keys.
"""

from functools import partial

from ..errors import ConfigError
from ..layer import check_bool, check_float

#: the optimisers ``train.optimizer`` names, in increasing complexity.
OPTIMIZERS = ("sgd", "adam", "adamw")

#: the defaults of the keys an optimiser reads (also the schema's ``train:`` defaults).
DEFAULTS = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
            "betas": [0.9, 0.999], "eps": 1e-8}

#: the keys only SGD reads, and the keys only Adam and AdamW read.
SGD_KEYS, ADAM_KEYS = ("momentum", "nesterov"), ("betas", "eps")


def check_optimizer(name, value):
    """``train.optimizer``: one of :data:`OPTIMIZERS` (the error suggests the closest)."""
    from ..config.checks import check_choice  # NOTE: here, as paracnn.config imports this module

    try:
        return check_choice(name, value, OPTIMIZERS)
    except ConfigError as e:
        raise ConfigError(e.message, key=name) from None


def check_betas(name, value):
    """``train.betas``: two numbers, each in [0, 1); returns a list."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{name} must be two numbers [beta1, beta2], such as [0.9, 0.999], "
                          f"got {value!r}", key=name)
    return [check_float(f"{name}[{i}]", v, low=0.0, high=1.0, high_open=True)
            for i, v in enumerate(value)]


RULES = {
    "optimizer": check_optimizer,
    "lr": partial(check_float, low=0.0, low_open=True),
    "momentum": partial(check_float, low=0.0, high=1.0, high_open=True),
    "nesterov": check_bool,
    "weight_decay": partial(check_float, low=0.0),
    "betas": check_betas,
    "eps": partial(check_float, low=0.0, low_open=True),
}


def check_combination(values, prefix=""):
    """The rule between keys: ``nesterov`` needs ``momentum`` > 0 (SGD); raises ``ConfigError(key="nesterov")``.

    ``prefix`` goes before a key in the message (the schema passes ``"train."``).
    """
    if values.get("optimizer", "sgd") == "sgd" and values.get("nesterov") and not values.get("momentum"):
        raise ConfigError(f"{prefix}nesterov needs momentum > 0", key="nesterov")


def unused_settings(values, prefix=""):
    """``(key, line)`` per key set to other than its default that the chosen optimiser does not use.

    ``momentum`` and ``nesterov`` mean nothing to Adam and AdamW, ``betas`` and
    ``eps`` nothing to SGD. They are reported, not refused: every shipped
    config sets a momentum, and ``--set train.optimizer=adam`` must work on it.
    """
    name = values.get("optimizer", "sgd")
    foreign, owner = (ADAM_KEYS, "Adam's") if name == "sgd" else (SGD_KEYS, "SGD's")
    return [(key, f"{prefix}{key} {values[key]!r} is {owner}; {name} does not use it")
            for key in foreign if key in values and values[key] != DEFAULTS[key]]


def unused_keys(values, prefix=""):
    """The lines of :func:`unused_settings`."""
    return [line for _, line in unused_settings(values, prefix)]
