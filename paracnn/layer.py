"""The Layer protocol: every built-in and plugin layer is a subclass of :class:`Layer`.

A layer works on **one sample at a time**, held as a flat Python list of
floats in channel-major order. Shapes never include the batch dimension:
``(channels, height, width)`` for images, ``(features,)`` for vectors.

The lifecycle is::

    layer = Conv2d(filters=6, kernel_size=5)      # the YAML mapping, minus `type`
    out_shape = layer.build((1, 28, 28), rng)     # creates parameters
    y = layer.forward(x)                          # one sample; keeps what backward needs
    dx = layer.backward(dy)                       # returns dL/dx, *adds* into layer.grads

- ``build(input_shape, rng) -> output_shape`` creates the parameters with the
  layer's initialiser and the seeded :class:`random.Random` it is given. It
  raises :class:`~paracnn.errors.ShapeError` when the input cannot be accepted.
- ``forward(x)`` handles one sample and stores what ``backward`` needs.
- ``backward(dy) -> dx`` accumulates parameter gradients (``+=``), so a
  micro-batch of samples sums its gradients without extra copies. A layer may
  defer that addition (conv2d and dense batch their outer products over the
  micro-batch, which turns them into long dot products) provided
  ``sync_grads()`` completes it; whoever reads ``grads`` calls ``sync_grads()``
  first. Layers that add immediately need not implement it.
- ``params`` and ``grads`` are dicts of flat lists under the same names
  (``weight``, ``bias``); ``param_shapes`` holds their logical shapes, laid out
  like PyTorch so weights can be copied into torch by name.
- ``get_config()`` returns the constructor arguments: ``type(layer)(**cfg)``
  rebuilds the layer, and the YAML mapping round-trips through it.
- Layers pickle (no closures, no lambdas) so worker processes started with
  ``spawn`` or ``forkserver`` receive them intact.

Two attributes are set by the model before each sample: ``training`` (dropout
and friends behave differently) and ``seed`` (an int that stochastic layers
use to draw a reproducible mask, whichever process runs the sample). A model
sets ``needs_input_grad = False`` on its first layer, which may then skip
computing ``dx``.
"""

import contextvars
import math
import numbers

from .errors import ConfigError, ShapeError

#: the :class:`ParamBudget` of the model being built, if it set one (see ``Sequential.build``).
param_budget = contextvars.ContextVar("paracnn_param_budget", default=None)


class ParamBudget:
    """The running parameter count of a model being built, and the most it may reach.

    :meth:`Layer.add_param` asks it before allocating, so a model too large for
    memory is refused before the first oversized list is made.
    """

    def __init__(self, limit):
        self.limit, self.total = limit, 0

    def take(self, name, shape):
        n = math.prod(shape)
        self.total += n
        if self.total > self.limit:
            raise OverBudget(name, tuple(shape), n)


class OverBudget(Exception):
    """Raised by ``add_param`` past the budget; the model turns it into a ConfigError."""

    def __init__(self, name, shape, count):
        super().__init__(name, shape, count)
        self.name, self.shape, self.count = name, shape, count


class Layer:
    """Base class of all layers. Subclasses override ``build``, ``forward``, ``backward``.

    Attributes:
        params: ``{name: flat list of floats}``, the trainable parameters.
        grads: ``{name: flat list of floats}``, accumulated gradients, same names.
        param_shapes: ``{name: shape tuple}``.
        input_shape, output_shape: set by ``build``.
        training: whether the layer runs in training mode.
        seed: per-sample seed for stochastic layers, set by the model.
        needs_input_grad: when False, ``backward`` may return None.
    """

    #: attribute names holding per-sample state; dropped when pickling because a
    #: layer sent to a worker never needs the last sample it saw.
    transient = ()

    #: ``(config, input_shape)`` pairs that the test suite runs through
    #: :func:`paracnn.testing.check_layer`; every registered layer gives at least one.
    examples = ()

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.param_shapes = {}
        self.input_shape = None
        self.output_shape = None
        self.training = False
        self.seed = None
        self.needs_input_grad = True

    # -- the protocol ---------------------------------------------------------
    def build(self, input_shape, rng=None):
        """Create parameters for ``input_shape`` and return the output shape."""
        self.input_shape = self.output_shape = tuple(input_shape)
        return self.output_shape

    def forward(self, x):
        """Return the output for one sample ``x`` (a flat list)."""
        raise NotImplementedError

    def backward(self, dy):
        """Add parameter gradients for upstream gradient ``dy``; return ``dx``."""
        raise NotImplementedError

    def get_config(self):
        """Return the constructor arguments as a plain dict (YAML-safe values)."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- helpers for subclasses ----------------------------------------------
    def add_param(self, name, shape, init, rng, fan_in, fan_out):
        """Create parameter ``name`` of ``shape`` with initialiser spec ``init``.

        The one place parameters are allocated: when the model sets a
        :class:`ParamBudget`, a parameter past it raises before any list is made.
        """
        budget = param_budget.get()
        if budget is not None:
            budget.take(name, shape)
        n = math.prod(shape)
        from .init import get_initializer  # NOTE: here, as init.py checks its numbers with check_float

        values = get_initializer(init)(n, fan_in, fan_out, rng)
        self.params[name] = values
        self.grads[name] = [0.0] * n
        self.param_shapes[name] = tuple(shape)
        return values

    def sync_grads(self):
        """Finish any gradient accumulation that ``backward`` deferred."""

    def zero_grad(self):
        """Set every gradient to zero, discarding deferred work too."""
        for name, g in self.grads.items():
            self.grads[name] = [0.0] * len(g)

    def num_params(self):
        return sum(len(p) for p in self.params.values())

    def macs(self):
        """Multiply-accumulates of one forward pass (for ``paracnn summary``)."""
        return 0

    def description(self):
        """One line describing the layer, from the class docstring."""
        doc = (type(self).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else type(self).__name__

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in self.transient:
            state.pop(key, None)
        return state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# -- argument validation shared by all layers ---------------------------------
# They raise ConfigError(key=...) so the YAML loader can point at the line.

def check_int(name, value, minimum=1, maximum=None):
    """``value`` as an int in ``[minimum, maximum]`` (``maximum`` None: no upper bound).

    Raises ``ConfigError(key=name)``: ``filters must be >= 1, got 0``.
    Example: ``check_int("filters", 6)`` returns 6.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}", key=name)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}", key=name)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}", key=name)
    return int(value)


def check_pair(name, value, minimum=1, maximum=None):
    """An int or a two-item list, as PyTorch accepts for kernel_size and stride; returns a pair.

    Each item is checked as :func:`check_int` does. Example: ``check_pair("stride", 2)``
    returns ``(2, 2)``.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"{name} must be an integer or a list of two, got {value!r}", key=name)
        return tuple(check_int(name, v, minimum, maximum) for v in value)
    v = check_int(name, value, minimum, maximum)
    return (v, v)


def check_float(name, value, low=None, high=None, low_open=False, high_open=False, *,
                minimum=None, maximum=None):
    """``value`` as a finite float within the bounds given; raises ``ConfigError(key=name)``.

    Args:
        name: the argument's name, for the message and the error's ``key``.
        value: an int or float (not a bool).
        low, high: bounds, inclusive unless ``low_open``/``high_open``
            (``rate`` of dropout is ``low=0.0, high=1.0, high_open=True``).
        minimum, maximum: inclusive bounds, named as :func:`check_int` names them
            (``minimum=0.0`` is ``low=0.0``).

    Example: ``check_float("alpha", 0.1, minimum=0.0, maximum=1.0)`` returns 0.1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}", key=name)
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}", key=name)
    for bound, is_open in ((low, low_open), (minimum, False)):
        if bound is not None and (value < bound or (is_open and value == bound)):
            raise ConfigError(f"{name} must be {'>' if is_open else '>='} {bound}, got {value}",
                              key=name)
    for bound, is_open in ((high, high_open), (maximum, False)):
        if bound is not None and (value > bound or (is_open and value == bound)):
            raise ConfigError(f"{name} must be {'<' if is_open else '<='} {bound}, got {value}",
                              key=name)
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}", key=name)
    return value


def check_init(name, spec):
    """Validate an initialiser spec now, so a bad one is reported at config time."""
    from .init import get_initializer  # NOTE: here, as init.py checks its numbers with check_float

    get_initializer(spec, key=name)
    return spec


def expect_image(shape):
    """Raise ShapeError unless ``shape`` is ``(C, H, W)``.

    Messages start with the verb: the model prefixes ``layers[i] <type>``.
    """
    if len(shape) != 3:
        raise ShapeError(
            f"expects an image input (channels, height, width) but gets "
            f"{format_shape(shape)}; image layers must come before flatten")
    return shape


def expect_flat(shape):
    """Raise ShapeError unless ``shape`` is ``(features,)``."""
    if len(shape) != 1:
        raise ShapeError(
            f"expects a flat input but gets {format_shape(shape)}; "
            f"add a flatten layer before it")
    return shape


def format_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
