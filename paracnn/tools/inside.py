"""Figures of what a trained network learned: filters, feature maps, saliency, predictions.

Each function returns a matplotlib ``Figure``. Images are flat channel-major
lists; :func:`plane` cuts out one channel as rows for ``imshow``.
"""

from .curves import new_figure, suptitle

#: colour maps: signed values get a diverging map centred on 0, magnitudes a sequential one.
SIGNED, MAGNITUDE, PICTURE = "RdBu_r", "inferno", "gray"
MISTAKE = "#d62728"


def plane(values, h, w, c=0):
    """Channel ``c`` of a flat ``(C, h, w)`` image as ``h`` rows of ``w`` values."""
    off = c * h * w
    return [values[off + y * w: off + (y + 1) * w] for y in range(h)]


def _bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _symmetric(values):
    top = max((abs(v) for v in values), default=0.0)
    return top or 1.0


def conv_weights(model):
    """``[(name, shape, values)]`` of every 4-D weight (every conv layer, inside blocks too)."""
    state = model.state_dict()
    return [(name, shape, state[name]) for name, shape in model.param_layout()
            if len(shape) == 4 and name.endswith("weight")]


def filters_figure(label, shape, values, first):
    """One conv layer's filters, on one colour scale centred on 0.

    ``label`` names the layer in the title, e.g. ``"layer 0 (conv2d)"``.

    The first layer's filters are drawn as small images, one per output
    channel (per input channel too, if the input has several); deeper layers
    get one row per output channel and one tile per input channel.
    """
    out_c, in_c, kh, kw = shape
    limit = _symmetric(values)
    per_kernel = kh * kw
    if first and in_c == 1:
        cols = min(out_c, 8)
        rows = -(-out_c // cols)
        fig = new_figure(1.5 * cols + 1.2, 1.6 * rows + 0.9)
        axes = fig.subplots(rows, cols, squeeze=False)
        for o in range(rows * cols):
            ax = axes[o // cols][o % cols]
            _bare(ax)
            if o >= out_c:
                ax.axis("off")
                continue
            image = ax.imshow(plane(values[o * per_kernel:(o + 1) * per_kernel], kh, kw), cmap=SIGNED,
                              vmin=-limit, vmax=limit)
            ax.set_title(f"filter {o}", fontsize=9)
        layout = f"{out_c} filters of {kh}x{kw}"
    else:
        tile = 0.55 if in_c > 8 else 0.8
        fig = new_figure(max(5.0, tile * in_c + 2.2), tile * out_c + 1.4)
        axes = fig.subplots(out_c, in_c, squeeze=False)
        for o in range(out_c):
            for c in range(in_c):
                ax = axes[o][c]
                _bare(ax)
                start = (o * in_c + c) * per_kernel
                image = ax.imshow(plane(values[start:start + per_kernel], kh, kw), cmap=SIGNED,
                                  vmin=-limit, vmax=limit)
                if c == 0:
                    ax.set_ylabel(f"out {o}", fontsize=8, rotation=0, ha="right", va="center")
                if o == out_c - 1:
                    ax.set_xlabel(f"in {c}", fontsize=8)
        layout = f"{out_c} output channels (rows) x {in_c} input channels (columns), {kh}x{kw} each"
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    suptitle(fig, f"Filters of {label}: {layout}\n(red positive, blue negative, white 0)")
    return fig


def feature_maps_figure(x, input_shape, activations, caption):
    """The input, then every chosen layer's output channels, one row per layer.

    Args:
        x: the input image, flat.
        input_shape: ``(C, H, W)``.
        activations: :class:`~paracnn.inspection.Activation` of the layers to show (image outputs).
        caption: what the image is (true and predicted class).
    """
    cols = max(a.shape[0] for a in activations)
    rows = len(activations)
    fig = new_figure(1.6 + 0.95 * cols, 1.1 * rows + 1.2)
    grid = fig.add_gridspec(rows, cols + 1)
    ax = fig.add_subplot(grid[:, 0])
    _, h, w = input_shape
    ax.imshow(plane(x, h, w), cmap=PICTURE)
    ax.set_title("input", fontsize=9)
    _bare(ax)
    for r, a in enumerate(activations):
        c_out, ah, aw = a.shape
        low, high = min(a.values), max(a.values)
        for c in range(c_out):
            ax = fig.add_subplot(grid[r, c + 1])
            ax.imshow(plane(a.values, ah, aw, c), cmap="viridis", vmin=low, vmax=high)
            _bare(ax)
            if c == 0:
                ax.set_ylabel(f"layer {a.index}\n{a.type}\n{ah}x{aw}", fontsize=8, rotation=0,
                              ha="right", va="center")
            if r == 0 or c >= activations[r - 1].shape[0]:
                ax.set_title(f"ch {c}", fontsize=8)
    suptitle(fig, f"Feature maps of {caption}\neach row: one layer's output channels, on that "
                  f"row's colour scale (yellow high, dark blue low)")
    return fig


def saliency_figure(samples, input_shape):
    """Image, raw input gradient and its absolute value, one row per image (as in seed 001).

    Args:
        samples: ``[(x, gradient, caption)]``; the gradient is of the predicted class's logit.
        input_shape: ``(C, H, W)``; channel 0 is drawn.
    """
    _, h, w = input_shape
    fig = new_figure(10.5, 3.0 * len(samples) + 0.8)
    axes = fig.subplots(len(samples), 3, squeeze=False)
    for row, (x, grad, caption) in zip(axes, samples):
        image_ax, raw_ax, abs_ax = row
        image_ax.imshow(plane(x, h, w), cmap=PICTURE)
        image_ax.set_title(caption, fontsize=10)
        limit = _symmetric(grad)
        raw = raw_ax.imshow(plane(grad, h, w), cmap=SIGNED, vmin=-limit, vmax=limit)
        raw_ax.set_title("raw gradient (red raises the logit)", fontsize=10)
        fig.colorbar(raw, ax=raw_ax, shrink=0.85)
        mag = abs_ax.imshow(plane([abs(g) for g in grad], h, w), cmap=MAGNITUDE, vmin=0, vmax=limit)
        abs_ax.set_title("absolute gradient", fontsize=10)
        fig.colorbar(mag, ax=abs_ax, shrink=0.85)
        for ax in row:
            _bare(ax)
    suptitle(fig, "Saliency: the gradient of the predicted class's logit with respect to each input "
                  "pixel")
    return fig


def predictions_figure(items, input_shape, classes, title, cols=6):
    """A grid of test images, each titled with its true and predicted class and the probability.

    Args:
        items: ``[(x, true_class, predicted_class, probability)]``.
        classes: class names.
        title: the figure title.
    """
    _, h, w = input_shape
    rows = max(1, -(-len(items) // cols))
    fig = new_figure(2.0 * cols, 2.35 * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False)
    for n in range(rows * cols):
        ax = axes[n // cols][n % cols]
        _bare(ax)
        if n >= len(items):
            ax.axis("off")
            continue
        x, true, pred, prob = items[n]
        ax.imshow(plane(x, h, w), cmap=PICTURE)
        wrong = true != pred
        ax.set_title(f"true: {classes[true]}\npredicted: {classes[pred]} ({100 * prob:.0f} %)",
                     fontsize=9, color=MISTAKE if wrong else "black")
        if wrong:
            for spine in ax.spines.values():
                spine.set_color(MISTAKE)
                spine.set_linewidth(3)
    suptitle(fig, title)
    return fig
