"""The hot loops again, written the way PyPy's tracing JIT runs fastest.

:mod:`paracnn.kernels` is shaped for CPython: C-level ``map``, ``itemgetter``
gathers and ``sumprod`` move work out of the interpreter. Under PyPy the JIT
compiles plain Python loops to machine code instead, and the same C-level
tricks cost more than they save there: an im2col copy allocates a tuple per
output position, and chained ``map`` objects stay opaque to the optimiser.
So every function here is a plain indexed loop over flat lists of floats
(which PyPy stores unboxed), with index arithmetic instead of copies:

- convolution is direct: an offset table (built once per layer) says where
  each weight's input sits relative to a window's corner, and no patch is
  ever materialised;
- backward visits only outputs with non-zero gradient, as the CPython
  kernels do, and does the weight and input gradient in the same pass.

Each function adds in **the same order as its CPython counterpart in
:mod:`paracnn.kernels` before Python 3.12** (``sum(map(mul))``: left to
right from 0, bias last; weight gradients summed per sample or per micro-batch
first and then added into the gradient buffer), so the two give the same bits,
except possibly the sign of a zero. Python 3.12's ``math.sumprod`` rounds
differently from both.

The layers choose between the two modules once, by :data:`paracnn.kernels.JIT`.
"""


class ConvPlan:
    """Where a convolution reads its input, precomputed once per layer.

    The input is padded once per sample into ``(C, Hp, Wp)``; then the input
    of weight ``j = (c, ky, kx)`` for the window whose corner sits at padded
    index ``base`` is ``xp[base + offsets[j]]``.

    Attributes:
        offsets: ``k = C*kh*kw`` ints, in PyTorch's weight order.
        bases: the padded index of each output position's window corner, row-major.
        out_h, out_w: the output size.
        padded: ``(C, Hp, Wp)``; ``pads`` is ``(top, left, bottom, right)``.
    """

    def __init__(self, in_shape, kernel, stride, pad_before=(0, 0), pad_after=None):
        c_in, h, w = in_shape
        kh, kw = kernel
        sh, sw = stride
        pt, pl = pad_before
        pb, pr = pad_after if pad_after is not None else pad_before
        hp, wp = h + pt + pb, w + pl + pr
        self.in_shape = (c_in, h, w)
        self.pads = (pt, pl, pb, pr)
        self.padded = (c_in, hp, wp)
        self.out_h = (hp - kh) // sh + 1
        self.out_w = (wp - kw) // sw + 1
        self.offsets = [c * hp * wp + ky * wp + kx
                        for c in range(c_in) for ky in range(kh) for kx in range(kw)]
        self.bases = [oy * sh * wp + ox * sw for oy in range(self.out_h) for ox in range(self.out_w)]

    def pad(self, x):
        """``x`` with the zero border added (``x`` itself when there is none)."""
        pt, pl, pb, pr = self.pads
        if not (pt or pl or pb or pr):
            return x
        c_in, h, w = self.in_shape
        _, hp, wp = self.padded
        xp = [0.0] * (c_in * hp * wp)
        for c in range(c_in):
            for y in range(h):
                src, dst = (c * h + y) * w, (c * hp + y + pt) * wp + pl
                xp[dst:dst + w] = x[src:src + w]
        return xp

    def unpad(self, xp):
        """The inverse of :meth:`pad`: drop the border."""
        pt, pl, pb, pr = self.pads
        if not (pt or pl or pb or pr):
            return xp
        c_in, h, w = self.in_shape
        _, hp, wp = self.padded
        x = []
        for c in range(c_in):
            for y in range(h):
                src = (c * hp + y + pt) * wp + pl
                x += xp[src:src + w]
        return x


def conv_forward(xp, weight, bias, plan):
    """Direct convolution: ``y[o, p] = Σ_j weight[o, j]·xp[bases[p] + offsets[j]] + bias[o]``.

    ``bias`` may be None. Output channel-major, like the input.
    """
    offsets, bases = plan.offsets, plan.bases
    k, n_pos = len(offsets), len(bases)
    filters = len(weight) // k
    out = [0.0] * (filters * n_pos)
    for o in range(filters):
        wo = o * k
        b = bias[o] if bias is not None else 0.0
        row = o * n_pos
        for p in range(n_pos):
            base = bases[p]
            acc = 0.0
            for j in range(k):
                acc += weight[wo + j] * xp[base + offsets[j]]
            out[row + p] = acc + b if bias is not None else acc
    return out


def conv_backward(xp, dy, weight, grad_w, grad_b, plan, need_dx):
    """Add dW (and db) into ``grad_w`` (``grad_b``); return dx (or None without ``need_dx``).

    Visits only positions with a non-zero ``dy``. Per channel, the weight
    gradient of this sample is summed in a scratch row first and then added
    into ``grad_w``, the order :func:`paracnn.kernels.weight_grads` uses; dx is
    formed row by row (the live channels' filters scaled and added in channel
    order) and folded onto the padded input position by position, as
    ``conv_input_cols`` and ``Scatter`` do.
    """
    offsets, bases = plan.offsets, plan.bases
    k, n_pos = len(offsets), len(bases)
    filters = len(weight) // k
    for o in range(filters):
        wo, row = o * k, o * n_pos
        gw = [0.0] * k
        gb = 0.0
        for p in range(n_pos):
            g = dy[row + p]
            if g != 0.0:
                base = bases[p]
                for j in range(k):
                    gw[j] += g * xp[base + offsets[j]]
                gb += g
        for j in range(k):
            grad_w[wo + j] += gw[j]
        if grad_b is not None:
            grad_b[o] += gb
    if not need_dx:
        return None
    dxp = [0.0] * len(xp)
    col = [0.0] * k
    for p in range(n_pos):
        first = True
        for o in range(filters):
            g = dy[o * n_pos + p]
            if g != 0.0:
                wo = o * k
                if first:
                    for j in range(k):
                        col[j] = weight[wo + j] * g
                    first = False
                else:
                    for j in range(k):
                        col[j] += weight[wo + j] * g
        if not first:
            base = bases[p]
            for j in range(k):
                dxp[base + offsets[j]] += col[j]
    return plan.unpad(dxp)


def dense_forward(x, weight, bias):
    """``y[o] = Σ_i weight[o, i]·x[i] + bias[o]`` (``bias`` may be None)."""
    n = len(x)
    units = len(weight) // n
    out = [0.0] * units
    for o in range(units):
        wo = o * n
        acc = 0.0
        for i in range(n):
            acc += weight[wo + i] * x[i]
        out[o] = acc + bias[o] if bias is not None else acc
    return out


def dense_backward(x, dy, weight, pending_w, need_dx):
    """Add ``dy ⊗ x`` into ``pending_w``; return ``dx = Wᵀ dy`` (or None).

    ``pending_w`` sums the micro-batch's weight gradient, sample by sample,
    before it is added into the gradient buffer once (``Dense.sync_grads``),
    the order of the CPython kernels' deferred dot products over samples.
    dx adds the live outputs' rows in output order.
    """
    n = len(x)
    dx = [0.0] * n if need_dx else None
    for o in range(len(dy)):
        g = dy[o]
        if g != 0.0:
            wo = o * n
            for i in range(n):
                pending_w[wo + i] += g * x[i]
            if need_dx:
                for i in range(n):
                    dx[i] += g * weight[wo + i]
    return dx


def add_to(acc, values):
    """``acc[i] += values[i]`` in place."""
    for i in range(len(values)):
        acc[i] += values[i]


def max_pool(x, plan):
    """Each window's maximum, and the input index of its first maximum (for backward).

    ``plan`` is a single-channel :class:`ConvPlan` of the pooling windows
    (unpadded, so its indices are the input's); channels are pooled one after
    another.
    """
    offsets, bases = plan.offsets, plan.bases
    k, n_pos = len(offsets), len(bases)
    _, hp, wp = plan.padded
    channels = len(x) // (hp * wp)
    out = [0.0] * (channels * n_pos)
    sources = [0] * (channels * n_pos)
    for c in range(channels):
        plane = c * hp * wp
        for p in range(n_pos):
            base = plane + bases[p]
            best_i = base + offsets[0]
            best = x[best_i]
            for j in range(1, k):
                i = base + offsets[j]
                v = x[i]
                if v > best:
                    best, best_i = v, i
            out[c * n_pos + p] = best
            sources[c * n_pos + p] = best_i
    return out, sources


def route(n_inputs, sources, dy):
    """dx with ``dy[j]`` added at ``sources[j]``, visiting only non-zero ``dy``."""
    dx = [0.0] * n_inputs
    for j in range(len(dy)):
        g = dy[j]
        if g != 0.0:
            dx[sources[j]] += g
    return dx
