"""``check_layer``: the one harness every layer passes, built-in or plugin.

Plugin authors call it from their own tests::

    from paracnn.testing import check_layer

    def test_my_layer():
        check_layer(MyLayer, {"alpha": 0.1}, input_shape=(3, 8, 8))

It checks, for one layer configuration and input shape:

1. ``build`` returns the shape that ``forward`` really produces;
2. ``backward`` matches central finite differences (float64) for the input and
   for every parameter, reporting the worst element and its relative error;
3. ``backward`` *adds* into the gradients (a second call doubles them);
4. ``get_config`` round-trips through YAML and the constructor;
5. the built layer survives a pickle round trip (what worker processes need):
   the copy's ``forward`` and ``backward`` give what the original's give.

Any failure raises :class:`GradientCheckError` (an ``AssertionError``) that
says which check failed and where.

For a built model, :func:`check_model` gradient-checks the whole network on
one sample, and :func:`check_model_contract` (from :mod:`paracnn.contract`)
runs checks 1 and 3, and the length of ``dx``, on every layer of the model
(on a copy, with one real sample): cheap enough that training runs it once
before its first step.
"""

import math
import pickle
import random
from dataclasses import dataclass, field
from operator import mul

import yaml

from .contract import (ContractReport, accumulation_problem, check_model_contract, dx_problem,
                       output_length_problem, rel_error)
from .layer import Layer, format_shape
from .loss import softmax_cross_entropy


class GradientCheckError(AssertionError):
    """A layer or model failed one of the harness checks.

    ``layer`` is the index of the model's failing layer (from :func:`check_model`), else None.
    """

    layer = None


@dataclass
class Worst:
    """The element whose analytic and numeric gradients disagree the most."""

    tensor: str
    index: int
    analytic: float
    numeric: float
    rel_error: float

    def __str__(self):
        return (f"{self.tensor}[{self.index}]: analytic {self.analytic:.10g}, "
                f"numeric {self.numeric:.10g}, relative error {self.rel_error:.3g}")


@dataclass
class CheckReport:
    """What ``check_layer``/``check_model`` measured."""

    name: str
    output_shape: tuple = ()
    checked: dict = field(default_factory=dict)   # tensor -> number of elements checked
    worst: dict = field(default_factory=dict)     # tensor -> Worst

    def max_rel_error(self):
        return max((w.rel_error for w in self.worst.values()), default=0.0)

    def __str__(self):
        lines = [f"{self.name}: output {format_shape(self.output_shape)}"]
        lines += [f"  {w}  ({self.checked[t]} elements checked)" for t, w in self.worst.items()]
        return "\n".join(lines)


def check_layer(layer_type, config=None, input_shape=(1, 6, 6), *, seed=0, eps=1e-6,
                tol=1e-5, training=True, max_elements=400):
    """Run every harness check on one layer; return a :class:`CheckReport`.

    Args:
        layer_type: a Layer subclass, or a registered layer name (``"conv2d"``).
        config: the layer's YAML mapping without ``type`` (constructor kwargs).
        input_shape: the shape of one sample.
        seed: seeds the parameters, the input, the upstream gradient and dropout.
        eps: finite-difference step.
        tol: largest relative error accepted.
        training: run in training mode (exercises dropout-like layers).
        max_elements: elements checked per tensor; larger tensors are sampled.
    """
    config = dict(config or {})
    cls = _resolve(layer_type)
    name = f"{getattr(cls, '__name__', cls)}({', '.join(f'{k}={v!r}' for k, v in config.items())})"
    report = CheckReport(name)
    rng = random.Random(seed)
    layer = cls(**config)
    out_shape = tuple(layer.build(tuple(input_shape), random.Random(seed)))
    report.output_shape = out_shape
    layer.training, layer.seed = training, seed
    x = [rng.uniform(-1.0, 1.0) for _ in range(math.prod(input_shape))]
    y = layer.forward(list(x))
    _fail_on(output_length_problem(out_shape, y), name)
    # L = Σ y·r has dL/dy = r: a random r exercises every output.
    r = [rng.uniform(-1.0, 1.0) for _ in range(len(y))]

    def loss():
        return math.fsum(map(mul, layer.forward(x), r))

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(list(r))
    layer.sync_grads()
    grads = {k: list(g) for k, g in layer.grads.items()}
    _fail_on(dx_problem(len(x), dx), name)
    _check_tensor(report, "input", x, dx, loss, eps, tol, rng, max_elements)
    for pname, values in layer.params.items():
        _check_tensor(report, pname, values, grads[pname], loss, eps, tol, rng, max_elements)
    _fail_on(accumulation_problem(layer, x, r, grads), name)
    _check_config_round_trip(cls, layer, name)
    _check_pickle(layer, x, r, name)
    return report


def check_model(model, x=None, label=0, *, seed=0, eps=1e-6, tol=1e-4, per_tensor=12):
    """Finite-difference check of a whole built model's parameter gradients on one sample.

    Checks ``per_tensor`` randomly chosen elements of every parameter tensor
    against central differences of the softmax cross-entropy loss.
    """
    rng = random.Random(seed)
    if x is None:
        x = [rng.uniform(-1.0, 1.0) for _ in range(math.prod(model.input_shape))]
    report = CheckReport("model", tuple(model.output_shape))

    def loss():
        return softmax_cross_entropy(model.forward(x, training=True, seed=seed), label)[0]

    model.zero_grad()
    model.train_sample(x, label, seed=seed)
    model.get_grads()  # completes deferred accumulation
    for i, layer in enumerate(model.layers):
        for pname, values in layer.params.items():
            try:
                _check_tensor(report, f"layers[{i}] {model.types[i]}.{pname}", values,
                              list(layer.grads[pname]), loss, eps, tol, rng, per_tensor)
            except GradientCheckError as e:
                e.layer = i
                raise
    model.zero_grad()
    return report


# -- the individual checks --------------------------------------------------------

def _check_tensor(report, tensor, values, analytic, loss, eps, tol, rng, max_elements):
    n = len(values)
    indices = range(n) if n <= max_elements else sorted(rng.sample(range(n), max_elements))
    worst = None
    for i in indices:
        saved = values[i]
        values[i] = saved + eps
        up = loss()
        values[i] = saved - eps
        down = loss()
        values[i] = saved
        numeric = (up - down) / (2.0 * eps)
        err = rel_error(analytic[i], numeric)
        if worst is None or err > worst.rel_error:
            worst = Worst(tensor, i, analytic[i], numeric, err)
    if worst is None:
        return
    report.checked[tensor] = len(indices)
    report.worst[tensor] = worst
    if worst.rel_error > tol:
        raise GradientCheckError(f"{report.name}: gradient check failed for {worst} "
                                 f"(tolerance {tol:g})")


def _fail_on(problem, name):
    if problem:
        raise GradientCheckError(f"{name}: {problem}")


def _check_config_round_trip(cls, layer, name):
    config = layer.get_config()
    try:
        text = yaml.safe_dump(config)
    except yaml.YAMLError as e:
        raise GradientCheckError(f"{name}: get_config() is not plain YAML data: {e}") from None
    if yaml.safe_load(text) != config:
        raise GradientCheckError(f"{name}: get_config() does not survive YAML: {config!r}")
    again = cls(**yaml.safe_load(text)).get_config()
    if again != config:
        raise GradientCheckError(f"{name}: get_config() round trip changed the config: "
                                 f"{config!r} became {again!r}")


def _check_pickle(layer, x, dy, name):
    layer.training = False
    expected = layer.forward(list(x)), layer.backward(list(dy))
    try:
        clone = pickle.loads(pickle.dumps(layer))
    except Exception as e:  # noqa: BLE001 - any failure here means workers cannot get it
        raise GradientCheckError(f"{name}: the built layer does not pickle "
                                 f"(worker processes need it to): {e}") from None
    if clone.params != layer.params:
        raise GradientCheckError(f"{name}: parameters changed across pickling")
    try:
        got = clone.forward(list(x)), clone.backward(list(dy))
    except AttributeError as e:
        raise GradientCheckError(f"{name}: after a pickle round trip: AttributeError: {e}; "
                                 f"make that attribute in prepare(), which unpickling "
                                 f"calls") from None
    for method, a, b in zip(("forward", "backward"), got, expected):
        if a != b:
            raise GradientCheckError(f"{name}: {method}() differs after a pickle round trip")


def _resolve(layer_type):
    if isinstance(layer_type, type) and issubclass(layer_type, Layer):
        return layer_type
    if isinstance(layer_type, str):
        from .registry import resolve_layer
        return resolve_layer(layer_type)
    raise TypeError(f"check_layer needs a Layer subclass or a registered name, got {layer_type!r}")


__all__ = ["check_layer", "check_model", "check_model_contract", "CheckReport", "ContractReport",
           "GradientCheckError", "Worst", "rel_error"]
