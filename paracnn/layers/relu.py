"""Rectified linear unit.

Registered as ``relu`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

from .. import kernels as K
from ..layer import Layer


class ReLU(Layer):
    """Element-wise ``max(x, 0)``.

    Shape:
        - Input: any shape. Output: the same shape.

    Backward: dx = dy where y > 0, else 0.

    Example::

        ReLU().forward([-1.0, 2.0])    # -> [0.0, 2.0]
    """

    examples = (({}, (2, 4, 4)),)
    transient = ("_y",)

    def forward(self, x):
        self._y = K.relu(x)
        return self._y

    def backward(self, dy):
        return K.relu_backward(self._y, dy)
