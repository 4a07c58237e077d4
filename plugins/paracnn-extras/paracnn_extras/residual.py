"""Residual block: inner layers plus a shortcut from the block's input.

Registered as ``residual`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import random
from operator import add

from paracnn.errors import ConfigError, ShapeError
from paracnn.layer import Layer, format_shape
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense

from ._compose import FlatView, inner_layer, inner_seed

PROJECTIONS = ("auto", "always", "none")


class Residual(Layer):
    """Residual block ``y = F(x) + S(x)``: inner layers ``F`` and a shortcut ``S`` (He et al. 2016).

    ``F`` is a list of ordinary layer mappings, looked up in the registry like
    the model's own (plugins included). ``S`` is the identity when ``F`` keeps
    the shape; otherwise a learnable projection without bias: a 1×1
    convolution (strided if ``F`` shrinks the image) or, for vectors, a dense
    layer.

    Args:
        layers: the inner layers, each a mapping with ``type:``, in order.
        projection: ``auto`` (project only when the shapes differ), ``always``,
            or ``none`` (identity; ``F`` must keep the shape). Default ``auto``.

    Shape:
        - Input: ``(C, H, W)`` or ``(n,)``.
        - Output: the output of the inner layers, ``(C', H', W')`` or ``(n',)``.
          A projection needs ``H' = ⌊(H − 1)/s⌋ + 1`` for some stride ``s``
          (likewise ``W'``), which stride-``s`` convolutions with
          ``padding: (k − 1) / 2`` satisfy.

    Attributes:
        layers.<j>.<name>: the inner layers' parameters (``layers.0.weight``, ...).
        projection.weight: ``(C', C, 1, 1)`` for images, ``(n', n)`` for vectors.

    Backward: dx = Fᵀ(dy) + Sᵀ(dy), with Sᵀ(dy) = dy for the identity.

    Example (YAML)::

        - type: residual            # (6, 12, 12) -> (6, 12, 12), identity shortcut
          layers:
            - {type: conv2d, filters: 6, kernel_size: 3, padding: same}
            - {type: relu}
            - {type: conv2d, filters: 6, kernel_size: 3, padding: same}
    """

    examples = (
        ({"layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same"},
                     {"type": "relu"}]}, (2, 5, 5)),
        ({"layers": [{"type": "conv2d", "filters": 3, "kernel_size": 3, "stride": 2,
                      "padding": 1}]}, (2, 5, 5)),
        ({"layers": [{"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 3}],
          "projection": "always"}, (5,)),
    )

    def __init__(self, layers, projection="auto"):
        super().__init__()
        if projection not in PROJECTIONS:
            raise ConfigError(f"projection must be one of {', '.join(PROJECTIONS)}, got "
                              f"{projection!r}", key="projection")
        self.projection = projection
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ConfigError(f"layers must be a non-empty list of layer mappings, each with "
                              f"type:, got {layers!r}", key="layers")
        self.types, self.layers = [], []
        for j, spec in enumerate(layers):
            type_name, layer = inner_layer(j, spec)
            self.types.append(type_name)
            self.layers.append(layer)
        self.shortcut = None
        # (prefix, layer) pairs behind the flat params/grads; updated in place by build().
        self._parts = [(f"layers.{j}.", layer) for j, layer in enumerate(self.layers)]
        self.params = FlatView(self._parts, "params")
        self.grads = FlatView(self._parts, "grads")
        self.param_shapes = FlatView(self._parts, "param_shapes")
        self.needs_input_grad = self._needs_input_grad  # reaches the first inner layer now

    @property
    def needs_input_grad(self):
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value):
        # Only the first inner layer and the projection see the block's input. (Layer.__init__
        # sets this before they exist.)
        self._needs_input_grad = value
        first = self.__dict__.get("layers", [])[:1]
        shortcut = self.__dict__.get("shortcut")
        for layer in first + ([shortcut] if shortcut is not None else []):
            layer.needs_input_grad = value

    def build(self, input_shape, rng=None):
        # Each inner layer and the projection get their own stream, as the model's layers do.
        base = (rng if rng is not None else random.Random(0)).getrandbits(64)
        shape = tuple(input_shape)
        for j, (type_name, layer) in enumerate(zip(self.types, self.layers)):
            try:
                shape = tuple(layer.build(shape, random.Random(f"{base}:{j}")))
            except ConfigError as e:
                raise type(e)(f"inner layers[{j}] {type_name} {e.message}", key=("layers", j)) from None
            if any(s <= 0 for s in shape):
                raise ShapeError(f"inner layers[{j}] {type_name} would produce an empty output "
                                 f"{format_shape(shape)}; its input is too small", key=("layers", j))
        self.input_shape, self.output_shape = tuple(input_shape), shape
        self.shortcut = self._make_shortcut(self.input_shape, shape)
        parts = [(f"layers.{j}.", layer) for j, layer in enumerate(self.layers)]
        if self.shortcut is not None:
            self.shortcut.build(self.input_shape, random.Random(f"{base}:projection"))
            self.shortcut.needs_input_grad = self._needs_input_grad
            parts.append(("projection.", self.shortcut))
        self._parts[:] = parts
        return shape

    def _make_shortcut(self, in_shape, out_shape):
        same = in_shape == out_shape
        if self.projection == "none" or (self.projection == "auto" and same):
            if not same:
                raise ShapeError(
                    f"cannot add its input {format_shape(in_shape)} to the output "
                    f"{format_shape(out_shape)} of its layers with projection: none; use "
                    f"projection: auto to learn a 1x1 projection shortcut, or make the layers keep "
                    f"the shape (conv2d with filters: {in_shape[0]} and padding: same)",
                    key="projection")
            return None
        if len(in_shape) != len(out_shape):
            raise ShapeError(
                f"cannot add its input {format_shape(in_shape)} to the output "
                f"{format_shape(out_shape)} of its layers: one is an image, the other a vector; "
                f"keep flatten outside the residual block")
        if len(in_shape) == 1:
            return Dense(units=out_shape[0], bias=False, init="xavier_uniform")
        stride = tuple(_stride(n, m) for n, m in zip(in_shape[1:], out_shape[1:]))
        if None in stride:
            raise ShapeError(
                f"cannot project its input {format_shape(in_shape)} onto the output "
                f"{format_shape(out_shape)} of its layers with a strided 1x1 convolution; "
                f"give its convolutions padding: same (or padding (k - 1) / 2 with a stride)")
        return Conv2d(filters=out_shape[0], kernel_size=1, stride=stride, bias=False,
                      init="xavier_uniform")

    def forward(self, x):
        h = x
        for j, layer in enumerate(self.layers):
            layer.training, layer.seed = self.training, inner_seed(self.seed, j)
            h = layer.forward(h)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        return list(map(add, h, s))

    def backward(self, dy):
        g = dy
        for layer in reversed(self.layers):
            g = layer.backward(g)
        # The projection's weights need their gradient even when dx is not wanted.
        s = dy if self.shortcut is None else self.shortcut.backward(dy)
        if not self._needs_input_grad:
            return None
        return list(map(add, g, s))

    def _sublayers(self):
        return [layer for _, layer in self._parts]

    def sync_grads(self):
        for layer in self._sublayers():
            layer.sync_grads()

    def zero_grad(self):
        for layer in self._sublayers():
            layer.zero_grad()

    def macs(self):
        return sum(layer.macs() for layer in self._sublayers())

    def get_config(self):
        return {"layers": [{"type": t, **layer.get_config()} for t, layer in zip(self.types, self.layers)],
                "projection": self.projection}


def _stride(n, m):
    """The stride s with ⌊(n − 1)/s⌋ + 1 = m (a 1×1 kernel maps n positions to m), or None."""
    for s in range(1, n + 1):
        if (n - 1) // s + 1 == m:
            return s
    return None
