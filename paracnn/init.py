"""Parameter initialisers, selected per layer with ``init:`` (and ``bias_init:``).

A spec is either a name or a mapping with ``type`` plus arguments::

    init: he_uniform
    init: {type: uniform, low: -0.1, high: 0.1}     # seed 000's choice
    bias_init: {type: constant, value: 0.01}

Every initialiser is called as ``init(n, fan_in, fan_out, rng)`` and returns a
list of ``n`` floats drawn from the seeded :class:`random.Random` ``rng``, so
the same seed gives the same weights in any process.
"""

import difflib
import math

from .errors import ConfigError
from .layer import check_float


class Uniform:
    """U(low, high). Seed 000 used ±0.1."""

    def __init__(self, low=-0.1, high=0.1):
        self.low, self.high = check_float("low", low), check_float("high", high)
        if not self.low < self.high:
            raise ConfigError(f"uniform needs low < high, got low={low}, high={high}")

    def __call__(self, n, fan_in, fan_out, rng):
        return [rng.uniform(self.low, self.high) for _ in range(n)]


class Normal:
    """N(mean, std²)."""

    def __init__(self, mean=0.0, std=0.01):
        self.mean, self.std = check_float("mean", mean), check_float("std", std, low=0.0, low_open=True)

    def __call__(self, n, fan_in, fan_out, rng):
        return [rng.gauss(self.mean, self.std) for _ in range(n)]


class HeUniform:
    """U(-a, a) with a = sqrt(6 / fan_in) (He et al. 2015), for ReLU networks."""

    def __call__(self, n, fan_in, fan_out, rng):
        a = math.sqrt(6.0 / fan_in)
        return [rng.uniform(-a, a) for _ in range(n)]


class HeNormal:
    """N(0, 2 / fan_in) (He et al. 2015)."""

    def __call__(self, n, fan_in, fan_out, rng):
        std = math.sqrt(2.0 / fan_in)
        return [rng.gauss(0.0, std) for _ in range(n)]


class XavierUniform:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""

    def __call__(self, n, fan_in, fan_out, rng):
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return [rng.uniform(-a, a) for _ in range(n)]


class XavierNormal:
    """N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""

    def __call__(self, n, fan_in, fan_out, rng):
        std = math.sqrt(2.0 / (fan_in + fan_out))
        return [rng.gauss(0.0, std) for _ in range(n)]


class Constant:
    """Every value equal to ``value``."""

    def __init__(self, value=0.0):
        self.value = check_float("value", value)

    def __call__(self, n, fan_in, fan_out, rng):
        return [self.value] * n


class Zeros(Constant):
    """All zeros."""

    def __init__(self):
        super().__init__(0.0)


INITIALIZERS = {
    "uniform": Uniform,
    "normal": Normal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "xavier_uniform": XavierUniform,
    "xavier_normal": XavierNormal,
    "zeros": Zeros,
    "constant": Constant,
}


def get_initializer(spec, key="init"):
    """Turn a spec (a name or ``{type: name, ...args}``) into an initialiser."""
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, dict):
        args = dict(spec)
        name = args.pop("type", None)
        if not isinstance(name, str):
            raise ConfigError(f"{key} needs a 'type:' naming the initialiser, one of: "
                              f"{', '.join(INITIALIZERS)}", key=key)
    else:
        raise ConfigError(f"{key} must be an initialiser name or a mapping with 'type:', "
                          f"got {spec!r}", key=key)
    cls = INITIALIZERS.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, INITIALIZERS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown initialiser '{name}' in {key}{hint} "
                          f"(available: {', '.join(INITIALIZERS)})", key=key)
    try:
        return cls(**args)
    except TypeError:
        allowed = [p for p in cls.__init__.__code__.co_varnames[1:cls.__init__.__code__.co_argcount]]
        raise ConfigError(f"initialiser '{name}' in {key} takes "
                          f"{', '.join(allowed) if allowed else 'no arguments'}, "
                          f"got {', '.join(args)}", key=key) from None
    except ConfigError as e:
        raise ConfigError(f"{key}: {e.message}", key=key) from None
