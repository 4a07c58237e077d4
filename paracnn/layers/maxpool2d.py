"""Max pooling.

Registered as ``maxpool2d`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math

from .. import jit_kernels as J
from .. import kernels as K
from ._pooling import Pool2d


class MaxPool2d(Pool2d):
    """2-D max pooling, channel by channel.

    Args:
        kernel_size: int or ``[kh, kw]``. Default 2.
        stride: int or ``[sh, sw]``. Default: ``kernel_size``.

    Shape:
        - Input: ``(C, H, W)``
        - Output: ``(C, H_out, W_out)``, ``H_out = floor((H - kh) / sh) + 1``.

    Backward: each window's gradient goes to its (first) maximum; only windows
    that received a non-zero gradient are visited.

    Example::

        MaxPool2d(kernel_size=2).build((6, 24, 24))    # -> (6, 12, 12)
    """

    examples = (({"kernel_size": 2}, (2, 6, 6)), ({"kernel_size": 3, "stride": 2}, (2, 7, 7)))

    def forward(self, x):
        if K.JIT:
            y, self._sources = J.max_pool(x, self._plan)
            return y
        self._windows = K.chunks(self._get_windows(x), self._width)
        self._maxima = list(map(max, self._windows))
        return self._maxima

    def backward(self, dy):
        if K.JIT:
            return J.route(math.prod(self.input_shape), self._sources, dy)
        sources = K.argmax_sources(self._windows, self._maxima, self._table, self._width)
        return K.route(math.prod(self.input_shape), sources, dy)
