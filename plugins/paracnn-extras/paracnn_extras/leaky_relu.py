"""Leaky rectified linear unit.

Registered as ``leaky_relu`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

from paracnn.layer import Layer, check_float


class LeakyReLU(Layer):
    """Element-wise ``x if x > 0 else alpha·x`` (PyTorch's ``LeakyReLU``).

    Args:
        alpha: slope for negative inputs, ``0 <= alpha <= 1``. Default 0.01
            (PyTorch's ``negative_slope``).

    Shape:
        - Input: any shape. Output: the same shape.

    Backward: dx = dy where x > 0, else alpha·dy.

    Example::

        LeakyReLU(alpha=0.1).forward([-1.0, 2.0])    # -> [-0.1, 2.0]
    """

    examples = (({}, (2, 4, 4)), ({"alpha": 0.2}, (9,)))
    transient = ("_y",)

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = check_float("alpha", alpha, low=0.0, high=1.0)

    def forward(self, x):
        a = self.alpha
        self._y = [v if v > 0.0 else a * v for v in x]
        return self._y

    def backward(self, dy):
        # NOTE: with alpha >= 0, y > 0 exactly where x > 0, so y is all backward needs.
        a = self.alpha
        return [g if v > 0.0 else a * g for g, v in zip(dy, self._y)]

    def get_config(self):
        return {"alpha": self.alpha}
