"""The hot loops, written the way CPython runs fastest. Every layer calls these.

(Under PyPy, where :data:`JIT` is true, conv2d, dense and maxpool2d call
:mod:`paracnn.jit_kernels` instead: plain loops that its JIT compiles.)

Rules that every function here follows, because they decide the speed:

- Data is a **flat list** of floats in channel-major order, never nested lists.
- Reordering (im2col, pooling windows, col2im) is one ``operator.itemgetter``
  call with an **index table built once per layer** at build time, so the
  gather runs in C.
- Dot products are ``math.sumprod`` (3.12+), a C loop with no float objects in
  between; before 3.12 they fall back to ``sum(map(mul, a, b))``.
- Loops that remain in Python run over *outputs that received gradient*, not
  over every element: after a 2×2 max-pool three of every four conv outputs
  get none, and ``itertools.compress`` drops them in C.

Conventions: a padded input is ``x + PAD`` where the element at ``len(x)`` is
0.0 (what padding reads) and the one at ``len(x) + 1`` is 1.0 (what a bias
column reads), so an index table can point at either.
"""

import os
import platform
from itertools import compress, repeat
from operator import add, itemgetter, mul

#: True under PyPy: the layers then run :mod:`paracnn.jit_kernels` instead of
#: these functions. ``PARACNN_KERNELS=jit`` or ``=c`` forces a choice (tests,
#: benchmarks); it is read once, at import.
_CHOICE = os.environ.get("PARACNN_KERNELS", "").strip().lower()
JIT = _CHOICE == "jit" or (_CHOICE != "c" and platform.python_implementation() == "PyPy")

try:
    from math import sumprod
    HAVE_SUMPROD = True
except ImportError:  # Python < 3.12
    HAVE_SUMPROD = False

    def sumprod(p, q, /):
        """Fallback dot product for Python < 3.12 (``math.sumprod``'s signature)."""
        return sum(map(mul, p, q))

#: Appended to an input so index tables can point at a constant 0.0 or 1.0.
PAD = (0.0, 1.0)


# -- dot products ---------------------------------------------------------------

def dots(w, rows):
    """``[w · r for r in rows]``: one vector against many (im2col patches)."""
    if HAVE_SUMPROD:
        return list(map(sumprod, repeat(w), rows))
    return [sum(map(mul, w, r)) for r in rows]


def matvec(rows, x):
    """``[r · x for r in rows]``: a matrix (list of rows) times a vector."""
    if HAVE_SUMPROD:
        return list(map(sumprod, rows, repeat(x)))
    return [sum(map(mul, r, x)) for r in rows]


def rows_of(flat, width):
    """Split a flat list into consecutive rows of ``width`` (list slices)."""
    return [flat[i:i + width] for i in range(0, len(flat), width)]


def chunks(seq, width):
    """Group ``seq`` into tuples of ``width`` in C (``zip`` over one iterator)."""
    return list(zip(*[iter(seq)] * width))


def add_into(acc, values, start=0):
    """``acc[start:start+len(values)] += values``, in place, in C."""
    stop = start + len(values)
    acc[start:stop] = map(add, acc[start:stop], values)


def scaled(values, a):
    """``[a * v for v in values]`` without a Python-level loop."""
    return list(map(mul, values, repeat(a)))


# -- index tables (built once per layer) -----------------------------------------

def window_table(in_shape, kernel, stride, pad_before=(0, 0), pad_after=None):
    """im2col index table for sliding windows over a (C, H, W) input.

    Returns ``(table, out_h, out_w)``. ``table`` lists, for every output
    position (row-major), the input indices of its window in the order
    (channel, ky, kx), which is PyTorch's weight layout. Positions that fall in
    the padding point at the constant 0.0 (index ``C*H*W``).
    ``pad_after`` defaults to ``pad_before``; they differ only for 'same'
    padding with an even kernel.
    """
    c_in, h, w = in_shape
    kh, kw = kernel
    sh, sw = stride
    pt, pl = pad_before
    pb, pr = pad_after if pad_after is not None else pad_before
    out_h = (h + pt + pb - kh) // sh + 1
    out_w = (w + pl + pr - kw) // sw + 1
    zero = c_in * h * w
    table = []
    for oy in range(out_h):
        for ox in range(out_w):
            for c in range(c_in):
                for ky in range(kh):
                    y = oy * sh + ky - pt
                    for kx in range(kw):
                        x = ox * sw + kx - pl
                        inside = 0 <= y < h and 0 <= x < w
                        table.append(c * h * w + y * w + x if inside else zero)
    return table, out_h, out_w


def with_bias_column(table, k, one):
    """Append index ``one`` (the constant 1.0) after every ``k`` entries."""
    out = []
    for start in range(0, len(table), k):
        out += table[start:start + k]
        out.append(one)
    return out


def pool_table(in_shape, kernel, stride):
    """Index table of pooling windows, channel by channel: output (C, out_h, out_w)."""
    c_in, h, w = in_shape
    plane, out_h, out_w = window_table((1, h, w), kernel, stride)
    table = []
    for c in range(c_in):
        base = c * h * w
        table += [base + i for i in plane]
    return table, out_h, out_w


def gather(table):
    """An ``itemgetter`` for ``table`` that always returns a tuple."""
    if len(table) == 1:
        index = table[0]
        return _Gather1(index)
    return itemgetter(*table)


class _Gather1:
    """``itemgetter`` with one index returns a scalar; this keeps it a tuple."""

    def __init__(self, index):
        self.index = index

    def __call__(self, seq):
        return (seq[self.index],)


class Scatter:
    """The adjoint of a gather (col2im): each input's sum over the slots that read it.

    Built once per layer from a gather ``table``. Inputs are grouped by how
    many slots read them, so every group is one ``itemgetter`` plus a C-level
    ``map(sum, ...)`` with no padding; a final gather restores input order.
    Slots that read the padding (index >= ``n_inputs``) are dropped.
    """

    def __init__(self, table, n_inputs):
        readers = [[] for _ in range(n_inputs)]
        for slot, src in enumerate(table):
            if src < n_inputs:
                readers[src].append(slot)
        by_count = {}
        for i, r in enumerate(readers):
            by_count.setdefault(len(r), []).append(i)
        self.groups, order = [], []
        for count, inputs in sorted(by_count.items()):
            if count:
                self.groups.append((count, gather([s for i in inputs for s in readers[i]])))
                order += inputs
        position = {i: n for n, i in enumerate(order)}
        # Inputs that no slot reads take the 0.0 appended after the sums.
        self.restore = gather([position.get(i, len(order)) for i in range(n_inputs)])

    def __call__(self, values):
        sums = []
        for count, get in self.groups:
            if count == 1:
                sums += get(values)
            else:
                sums += map(sum, zip(*[iter(get(values))] * count))
        sums.append(0.0)
        return list(self.restore(sums))


# -- convolution -------------------------------------------------------------------

def conv_forward(patches, filters):
    """``[f · p for f in filters for p in patches]``, channel-major output.

    ``patches`` are im2col rows (tuples), ``filters`` the flattened kernels,
    each with the bias appended when the patches carry a 1.0 column.
    """
    out = []
    if HAVE_SUMPROD:
        for f in filters:
            out += map(sumprod, repeat(f), patches)
    else:
        for f in filters:
            out += [sum(map(mul, f, p)) for p in patches]
    return out


def live_patches(patches, dy, n_pos):
    """Per output channel, the patches and dy values where dy is non-zero.

    Returns ``[(live_dy, live_patches), ...]``, one pair per channel. After a
    2×2 max-pool three of four positions carry no gradient and are dropped here
    in C; ``weight_grads`` turns the survivors into dot products.
    """
    out = []
    for start in range(0, len(dy), n_pos):
        g = dy[start:start + n_pos]
        out.append((list(compress(g, g)), list(compress(patches, g))))
    return out


def weight_grads(live_dy, live_rows):
    """``Σ_j live_dy[j] * live_rows[j]``: the rows transposed, then one dot per column.

    This turns one filter's outer-product sum (dW_c = Σ_p dy[c,p]·patch_p) into
    ``sumprod`` calls over its live positions, instead of element-wise Python
    arithmetic. ``Conv2d.backward`` calls it per output channel; ``Dense``
    does the same for its micro-batch with :func:`dots` over the sample columns.
    """
    return dots(live_dy, zip(*live_rows))


def conv_input_cols(filters, dy, n_pos, k):
    """dcols = Wᵀ·dY (im2col layout, ``n_pos`` rows of ``k``), skipping zero ``dy``.

    ``filters`` are the kernels without bias. Row ``p`` is the sum of the
    filters of the channels whose dy at ``p`` is non-zero, each scaled by it;
    positions no channel feeds cost one comparison per channel. The maps are
    chained lazily and materialised once per row, which measured faster than
    short ``sumprod`` dots over channels on 3.11 and 3.12 alike.
    ``Scatter`` then folds the columns back onto the input.
    """
    zero_row = [0.0] * k
    cols = []
    for g in zip(*[dy[c * n_pos:(c + 1) * n_pos] for c in range(len(filters))]):
        live_filters, live_dy = compress(filters, g), compress(g, g)
        first = next(live_filters, None)
        if first is None:
            cols += zero_row
            continue
        row = map(mul, first, repeat(next(live_dy)))
        for f, v in zip(live_filters, live_dy):
            row = map(add, row, map(mul, f, repeat(v)))
        cols += row
    return cols


# -- pooling ------------------------------------------------------------------------

def argmax_sources(windows, maxima, table, width):
    """Input index of each window's maximum (first one on ties), in C."""
    offsets = map(tuple.index, windows, maxima)
    slots = list(map(add, range(0, len(windows) * width, width), offsets))
    return gather(slots)(table)


def route(n_inputs, sources, dy):
    """dx with ``dy[j]`` added at ``sources[j]``, visiting only non-zero ``dy``."""
    dx = [0.0] * n_inputs
    for i, g in zip(compress(sources, dy), compress(dy, dy)):
        dx[i] += g
    return dx


# -- element-wise -------------------------------------------------------------------

def relu(x):
    """``max(v, 0)`` for every value."""
    return [v if v > 0.0 else 0.0 for v in x]


def relu_backward(y, dy):
    """dy where the output was positive; zero ``dy`` costs one comparison."""
    return [g if v > 0.0 else 0.0 for g, v in zip(dy, y)]


__all__ = [
    "JIT", "HAVE_SUMPROD", "PAD", "sumprod", "dots", "matvec", "rows_of", "chunks", "add_into",
    "scaled", "window_table", "with_bias_column", "pool_table", "gather", "conv_forward",
    "live_patches", "weight_grads", "conv_input_cols", "Scatter", "argmax_sources", "route", "relu",
    "relu_backward",
]
