"""Average pooling.

Registered as ``avgpool2d`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

import math
from itertools import chain, repeat

from .. import kernels as K
from ._pooling import Pool2d


class AvgPool2d(Pool2d):
    """2-D average pooling, channel by channel.

    Args:
        kernel_size: int or ``[kh, kw]``. Default 2.
        stride: int or ``[sh, sw]``. Default: ``kernel_size``.

    Shape:
        - Input: ``(C, H, W)``
        - Output: ``(C, H_out, W_out)``, ``H_out = floor((H - kh) / sh) + 1``.

    Backward: dx_i = Σ over the windows containing i of dy / (kh·kw).

    Example::

        AvgPool2d(kernel_size=2).build((6, 24, 24))    # -> (6, 12, 12)
    """

    examples = (({"kernel_size": 2}, (2, 6, 6)), ({"kernel_size": 3, "stride": 2}, (2, 7, 7)))

    def prepare(self):
        super().prepare()
        self._spread_back = K.Scatter(self._table, math.prod(self.input_shape))

    def forward(self, x):
        windows = K.chunks(self._get_windows(x), self._width)
        return K.scaled(list(map(sum, windows)), 1.0 / self._width)

    def backward(self, dy):
        # Each window slot receives dy / area; the adjoint gather sums them per input.
        spread = list(chain.from_iterable(map(repeat, K.scaled(dy, 1.0 / self._width),
                                              repeat(self._width))))
        return self._spread_back(spread)
