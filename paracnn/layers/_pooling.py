"""What max- and average-pooling share: arguments, shape checks and the window table."""

from .. import jit_kernels as J
from .. import kernels as K
from ..errors import ShapeError
from ..layer import Layer, check_pair, expect_image, format_shape


class Pool2d(Layer):
    """Base of the pooling layers; not registered itself."""

    # per sample (_windows, _maxima, _sources), then what prepare() rebuilds
    transient = ("_windows", "_maxima", "_sources", "_table", "_get_windows", "_spread_back",
                 "_plan")

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size = check_pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_pair("stride", stride)

    def build(self, input_shape, rng=None):
        _, h, w = expect_image(input_shape)
        kh, kw = self.kernel_size
        if kh > h or kw > w:
            raise ShapeError(
                f"kernel_size {kh}x{kw} is larger than its input {format_shape(input_shape)}; "
                f"use a smaller kernel or remove a pooling layer before it")
        self.input_shape = tuple(input_shape)
        self.prepare()
        return self.output_shape

    def prepare(self):
        """Build the window table (and the output shape); unpickling runs it again."""
        c, h, w = self.input_shape
        self._table, out_h, out_w = K.pool_table(self.input_shape, self.kernel_size, self.stride)
        self.output_shape = (c, out_h, out_w)
        self._width = self.kernel_size[0] * self.kernel_size[1]
        self._get_windows = K.gather(self._table)
        if K.JIT:
            self._plan = J.ConvPlan((1, h, w), self.kernel_size, self.stride)

    def get_config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}
