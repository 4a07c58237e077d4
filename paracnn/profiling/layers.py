"""Per-layer forward, backward and gradient-sync times, in the spirit of ``caffe time``.

Example::

    rows = layer_table(model, samples, repeats=3)
    print("\\n".join(format_layer_table(model, rows)))
"""

import statistics
import time

from ..loss import softmax_cross_entropy


def time_layers(model, samples, clock=time.perf_counter):
    """Per-layer forward, backward and gradient-sync seconds over the micro-batch, and the total.

    Dense layers defer their weight gradients to ``sync_grads`` at the end of
    the micro-batch; that time is measured per layer and counted here.
    Gradients are *added* into the model's buffers, as in training.
    ``clock``: e.g. ``time.process_time`` to count CPU time, which a busy host disturbs less.
    """
    n = len(model.layers)
    fwd, bwd, sync = [0.0] * n, [0.0] * n, [0.0] * n
    model.zero_grad()
    start = clock()
    for seed, (x, label) in enumerate(samples):
        for i, layer in enumerate(model.layers):
            layer.training, layer.seed = True, seed
            t = clock()
            x = layer.forward(x)
            fwd[i] += clock() - t
        _, dy = softmax_cross_entropy(x, label)
        for i in range(n - 1, -1, -1):
            t = clock()
            dy = model.layers[i].backward(dy)
            bwd[i] += clock() - t
    for i, layer in enumerate(model.layers):
        t = clock()
        layer.sync_grads()
        sync[i] += clock() - t
    return fwd, bwd, sync, clock() - start


def layer_table(model, samples, repeats=3, clock=time.perf_counter):
    """Median ms per sample of each layer's forward, backward and grad-sync over ``repeats`` runs.

    One untimed warm-up run on a few samples comes first. Returns
    ``{"samples", "repeats", "layers": [row, ...], "total_ms": [median, best, worst]}``
    with rows ``{index, type, output_shape, forward_ms, backward_ms, sync_ms, total_ms, percent}``.
    """
    time_layers(model, samples[:4])
    runs = [time_layers(model, samples, clock) for _ in range(repeats)]
    n = len(samples)
    rows = []
    for i in range(len(model.layers)):
        f, b, s = (statistics.median(r[part][i] for r in runs) / n * 1e3 for part in range(3))
        rows.append({"index": i, "type": model.types[i], "output_shape": list(model.shapes[i]),
                     "forward_ms": f, "backward_ms": b, "sync_ms": s, "total_ms": f + b + s})
    layer_sum = sum(r["total_ms"] for r in rows) or 1.0
    for r in rows:
        r["percent"] = 100.0 * r["total_ms"] / layer_sum
    totals = sorted(r[3] / n * 1e3 for r in runs)
    model.zero_grad()
    return {"samples": n, "repeats": repeats, "layers": rows,
            "total_ms": [statistics.median(totals), totals[0], totals[-1]]}


def format_layer_table(table, indent="  "):
    """The table as lines: one per layer, then the train-step total per sample."""
    lines = [f"{indent}{'layer':<14}{'output':<14}{'forward':>9}{'backward':>10}{'grad-sync':>11}"
             f"{'share':>8}"]
    for r in table["layers"]:
        shape = "x".join(map(str, r["output_shape"]))
        lines.append(f"{indent}{r['index']:>2} {r['type']:<11}{shape:<14}{r['forward_ms']:>9.3f}"
                     f"{r['backward_ms']:>10.3f}{r['sync_ms']:>11.3f}{r['percent']:>7.1f}%")
    med, best, worst = table["total_ms"]
    lines.append(f"{indent}train-step total {med:.2f} ms/sample (best {best:.2f}, worst {worst:.2f})")
    return lines
