"""2-D convolution, computed as im2col + one dot product per output (direct loops under PyPy).

Registered as ``conv2d`` (its ``paracnn.layers`` entry point in pyproject.toml).
"""

from .. import jit_kernels as J
from .. import kernels as K
from ..errors import ConfigError, ShapeError
from ..layer import Layer, check_bool, check_init, check_int, check_pair, expect_image, format_shape


class Conv2d(Layer):
    """2-D convolution (cross-correlation, as in PyTorch) over one image.

    Args:
        filters: number of output channels.
        kernel_size: int or ``[kh, kw]``.
        stride: int or ``[sh, sw]``. Default 1.
        padding: ``valid`` (none), ``same`` (output size = input size; stride 1
            only), or an int / ``[ph, pw]`` of zeros added on each side.
        bias: learn one bias per output channel. Default true.
        init: weight initialiser (see :mod:`paracnn.init`). Default ``he_uniform``.
        bias_init: bias initialiser. Default ``zeros``.

    Shape:
        - Input: ``(C_in, H, W)``
        - Output: ``(filters, H_out, W_out)`` where
          ``H_out = floor((H + 2*ph - kh) / sh) + 1`` (likewise ``W_out``).

    Attributes:
        weight: ``(filters, C_in, kh, kw)``, flat.
        bias: ``(filters,)``.

    Backward: dW_c = Σ_p dy[c,p]·patch_p and dx = col2im(Wᵀ·dy), both over
    the positions whose dy is non-zero only.

    Example::

        conv = Conv2d(filters=6, kernel_size=5)
        conv.build((1, 28, 28), random.Random(0))    # -> (6, 24, 24)
    """

    examples = (
        ({"filters": 3, "kernel_size": 3}, (2, 6, 6)),
        ({"filters": 2, "kernel_size": [3, 2], "stride": 2, "padding": 1, "bias": False}, (2, 7, 6)),
        ({"filters": 2, "kernel_size": 4, "padding": "same"}, (1, 5, 5)),
    )
    # per sample (_patches, _xp), then what prepare() rebuilds
    transient = ("_patches", "_xp", "_get_cols", "_col2im", "_plan")

    def __init__(self, filters, kernel_size, stride=1, padding="valid", bias=True,
                 init="he_uniform", bias_init="zeros"):
        super().__init__()
        self.filters = check_int("filters", filters)
        self.kernel_size = check_pair("kernel_size", kernel_size)
        self.stride = check_pair("stride", stride)
        self.padding = self._check_padding(padding)
        self.bias = check_bool("bias", bias)
        self.init = check_init("init", init)
        self.bias_init = check_init("bias_init", bias_init)
        if self.padding == "same" and self.stride != (1, 1):
            raise ConfigError("padding 'same' needs stride 1; give an explicit padding instead",
                              key="padding")

    @staticmethod
    def _check_padding(padding):
        if padding in ("valid", "same"):
            return padding
        if isinstance(padding, str):
            raise ConfigError(f"padding must be 'valid', 'same' or an integer, got {padding!r}",
                              key="padding")
        return check_pair("padding", padding, minimum=0)

    def _pads(self):
        """(pad_before, pad_after) per spatial dimension."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            # PyTorch's rule: the extra row/column of an even kernel goes after.
            before = tuple((k - 1) // 2 for k in self.kernel_size)
            after = tuple(k - 1 - b for k, b in zip(self.kernel_size, before))
            return before, after
        return self.padding, self.padding

    def build(self, input_shape, rng=None):
        c_in, h, w = expect_image(input_shape)
        before, after = self._pads()
        kh, kw = self.kernel_size
        if kh > h + before[0] + after[0] or kw > w + before[1] + after[1]:
            raise ShapeError(
                f"kernel_size {kh}x{kw} is larger than its (padded) input {format_shape(input_shape)}; "
                f"use a smaller kernel, add padding, or remove a pooling layer before it")
        self.input_shape = tuple(input_shape)
        fans = {"fan_in": c_in * kh * kw, "fan_out": self.filters * kh * kw}
        self.add_param("weight", (self.filters, c_in, kh, kw), init=self.init, rng=rng, **fans)
        if self.bias:
            self.add_param("bias", (self.filters,), init=self.bias_init, rng=rng, **fans)
        self.prepare()
        return self.output_shape

    def prepare(self):
        """Build the index tables (and the output shape); unpickling runs it again."""
        c_in, h, w = self.input_shape
        before, after = self._pads()
        table, out_h, out_w = K.window_table(self.input_shape, self.kernel_size, self.stride,
                                             before, after)
        self.output_shape = (self.filters, out_h, out_w)
        self._k = c_in * self.kernel_size[0] * self.kernel_size[1]
        self._n_pos = out_h * out_w
        n_in = c_in * h * w
        if K.JIT:
            self._plan = J.ConvPlan(self.input_shape, self.kernel_size, self.stride, before, after)
            return
        # The bias rides along as a constant-1.0 column, so one dot gives w·x + b.
        gather_table = K.with_bias_column(table, self._k, n_in + 1) if self.bias else table
        self._get_cols = K.gather(gather_table)
        self._col2im = K.Scatter(table, n_in)

    def _filter_rows(self):
        # NOTE: rebuilt per sample, not cached, for the reason given in Dense.forward.
        rows = K.rows_of(self.params["weight"], self._k)
        if self.bias:
            return [row + [b] for row, b in zip(rows, self.params["bias"])]
        return rows

    def forward(self, x):
        if K.JIT:
            self._xp = self._plan.pad(x)
            return J.conv_forward(self._xp, self.params["weight"], self.params.get("bias"),
                                  self._plan)
        width = self._k + 1 if self.bias else self._k
        self._patches = K.chunks(self._get_cols(x + list(K.PAD)), width)
        return K.conv_forward(self._patches, self._filter_rows())

    def backward(self, dy):
        if K.JIT:
            return J.conv_backward(self._xp, dy, self.params["weight"], self.grads["weight"],
                                   self.grads.get("bias"), self._plan, self.needs_input_grad)
        # Unlike dense, deferring to the micro-batch does not pay here: the
        # transpose of all live patches costs more than the dot calls it saves.
        k, gw = self._k, self.grads["weight"]
        for c, (live_dy, live_rows) in enumerate(K.live_patches(self._patches, dy, self._n_pos)):
            if live_dy:
                g = K.weight_grads(live_dy, live_rows)
                K.add_into(gw, g[:k], c * k)
                if self.bias:
                    self.grads["bias"][c] += g[k]
        if not self.needs_input_grad:
            return None
        cols = K.conv_input_cols(K.rows_of(self.params["weight"], k), dy, self._n_pos, k)
        return self._col2im(cols)

    def macs(self):
        return self.filters * self._n_pos * self._k

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "bias": self.bias, "init": self.init, "bias_init": self.bias_init}
