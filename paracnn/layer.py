"""The Layer protocol: every built-in and plugin layer is a subclass of :class:`Layer`.

A layer works on **one sample at a time**, held as a flat Python list of
floats in channel-major order. Shapes never include the batch dimension:
``(channels, height, width)`` for images, ``(features,)`` for vectors.

The lifecycle is::

    layer = Conv2d(filters=6, kernel_size=5)      # the YAML mapping, minus `type`
    out_shape = layer.build((1, 28, 28), rng)     # creates parameters
    y = layer.forward(x)                          # one sample; keeps what backward needs
    dx = layer.backward(dy)                       # returns dL/dx, *adds* into layer.grads

- ``build(input_shape, rng) -> output_shape`` creates the parameters with
  ``add_param(name, shape, init=..., rng=rng, fan_in=..., fan_out=...)``; a
  layer with derived state ends it with ``self.prepare()``. It raises
  :class:`~paracnn.errors.ShapeError` when the input cannot be accepted.
- ``forward(x)`` handles one sample and stores what ``backward`` needs.
- ``backward(dy) -> dx`` accumulates parameter gradients (``+=``), so a
  micro-batch of samples sums its gradients without extra copies. A layer may
  defer that addition (dense batches its outer products over the micro-batch,
  which turns them into long dot products) provided ``sync_grads()``
  completes it; whoever reads ``grads`` calls ``sync_grads()``
  first. Layers that add immediately need not implement it.
- ``params`` and ``grads`` are dicts of flat lists under the same names
  (``weight``, ``bias``); ``param_shapes`` holds their logical shapes, laid out
  like PyTorch so weights can be copied into torch by name.
- ``get_config()`` returns the constructor arguments: ``type(layer)(**cfg)``
  rebuilds the layer, and the YAML mapping round-trips through it.
- Layers pickle (no closures, no lambdas) so worker processes started with
  ``spawn`` or ``forkserver`` receive them intact. State that should not
  travel has one mechanism: its names go in ``transient`` (dropped when
  pickling), and whatever is derived from the arguments and ``input_shape``
  (index tables, gathers) is made in ``prepare()``, which ``build`` calls last
  and unpickling calls again. No layer overrides ``__getstate__`` or
  ``__setstate__``.

Two attributes are set by the model before each sample: ``training`` (dropout
and friends behave differently) and ``seed`` (an int that stochastic layers
use to draw a reproducible mask, whichever process runs the sample). A model
sets ``needs_input_grad = False`` on its first layer, which may then skip
computing ``dx``.
"""

import functools
import math
import numbers

from .budget import charge
from .errors import ConfigError, ParacnnError, ShapeError


class OutdatedLayerError(ParacnnError, TypeError):
    """A layer calls ``add_param`` positionally, as paracnn 0.1 took it; exit 2 (update the plugin)."""


def _keywords_after_shape(add_param):
    """Turn paracnn 0.1's positional ``add_param(name, shape, init, rng, 3, 6)`` into one clear error.

    Python's own "takes 3 positional arguments but 7 were given" names neither
    the layer nor the fix, and ends the command with a traceback.
    """
    @functools.wraps(add_param)
    def checked(self, name, shape, *positional, **keywords):
        if not positional:
            return add_param(self, name, shape, **keywords)
        shown = [repr(v) for v in positional]
        shown[1:2] = ["rng"] * len(shown[1:2])  # a Random's repr is an address; build calls it rng
        args = ", ".join(f"{k}={v}" for k, v in zip(("init", "rng", "fan_in", "fan_out"), shown))
        raise OutdatedLayerError(
            f"{type(self).__name__}.build() calls add_param({name!r}, {tuple(shape)!r}, ...) with "
            f"{len(positional)} more positional argument(s); everything after name and shape is "
            f"a keyword now: self.add_param({name!r}, {tuple(shape)!r}, {args}). If the layer "
            f"comes from a plugin, update the plugin")
    return checked


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

    #: attribute names dropped when pickling: per-sample state (a layer sent to a
    #: worker never needs the last sample it saw) and what ``prepare`` rebuilds.
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
        self.prepare()
        return self.output_shape

    def prepare(self):
        """Make the derived state (index tables, gathers) from the arguments and ``input_shape``.

        ``build`` calls it last, and unpickling calls it again (when
        ``input_shape`` is set), so the names it makes belong in ``transient``
        and never travel to a worker. It must not touch ``params`` or draw
        random numbers: it runs in every process that receives the layer.
        """

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
    @_keywords_after_shape
    def add_param(self, name, shape, *, init, rng, fan_in, fan_out):
        """Create parameter ``name`` of ``shape`` with initialiser spec ``init``; return its values.

        Args:
            name: the parameter's name (``weight``, ``bias``), in ``params`` and ``grads``.
            shape: its logical shape, PyTorch's layout (``(out, in, kh, kw)``).
            init: an initialiser spec (``he_uniform``, ``zeros``, ``{type: constant, value: 1.0}``).
            rng: the :class:`random.Random` that ``build`` received.
            fan_in, fan_out: the inputs and outputs of one unit, for ``he_*`` and ``xavier_*``.

        The one place parameters are allocated: inside a
        :class:`~paracnn.budget.ParamBudget` block, a parameter past its limit
        raises before any list is made.
        """
        charge(name, shape)
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

    def __setstate__(self, state):
        self.__dict__.update(state)
        if getattr(self, "input_shape", None) is not None:  # built: its derived state was dropped
            self.prepare()

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
