"""``paracnn compare RUN_A RUN_B``: how far apart two runs' weights are, tensor by tensor (seed 001's Table 1).

For every parameter tensor, and for the whole parameter vector:

- **L2 distance** ``‖a − b‖``;
- **relative change** ``‖a − b‖ / ‖b‖`` (B is the reference, e.g. the clean model);
- **cosine similarity** ``a·b / (‖a‖ ‖b‖)``;

with every sum exactly rounded (``math.fsum``), so the figures do not depend
on the order of the tensors. A ratio whose denominator is 0 is undefined:
``null`` in JSON, ``-`` in the table.

Tensor names are ``<layer index>.<layer type>.<parameter>`` (``0.conv2d.weight``),
taken from the model the checkpoint's own config builds, which also says
where each tensor sits in the flat weight vector. Two runs must have the same
architecture (input shape, and per layer the type, output shape and parameter
shapes); otherwise the error names the first layer that differs.

Next to the drift stand both runs' test accuracy and loss at those weights:
from ``RUN/eval.json`` when it was written at the checkpoint's step, else from
the metrics the checkpoint saved at the end of its epoch (the same row as
``metrics.jsonl``); a checkpoint taken mid-epoch was never evaluated.

Example::

    paracnn compare runs/jitter-10 runs/clean
    paracnn compare runs/a/checkpoints/best.json runs/b --json
"""

import json
import math
from dataclasses import asdict, dataclass
from operator import mul, sub
from pathlib import Path
from typing import List, Optional

from .checkpoint import finite_number, load_checkpoint, run_dir_of
from .errors import CheckpointError, ParacnnError
from .layer import format_shape
from .limits import MAX_RUN_FILE_BYTES


class ArchitectureMismatch(ParacnnError):
    """The two runs' models differ, so their weights cannot be compared tensor by tensor; exit 2."""


@dataclass
class Drift:
    """How far tensor ``a`` is from the reference ``b``; ratios are None where undefined."""

    name: str
    shape: list
    size: int
    l2: float
    relative_change: Optional[float]
    cosine: Optional[float]


@dataclass
class Side:
    """One of the two runs: where its weights came from and how well they did on the test set."""

    path: str
    checkpoint: str
    epoch: int
    step: int
    test_accuracy: Optional[float]
    test_loss: Optional[float]
    metrics_from: Optional[str]


@dataclass
class Comparison:
    """The result of :func:`compare`: both runs, one :class:`Drift` per tensor, and the overall one."""

    a: Side
    b: Side
    tensors: List[Drift]
    overall: Drift

    def to_dict(self):
        return asdict(self)


def drift(a, b, name="overall", shape=None):
    """The :class:`Drift` of float sequence ``a`` from the reference ``b`` (same length).

    Example: ``drift([3.0, 4.0], [0.0, 4.0])`` has l2 3, relative change 0.75 and cosine 0.8.
    """
    diff = list(map(sub, a, b))
    l2 = math.sqrt(math.fsum(map(mul, diff, diff)))
    square_a, square_b = math.fsum(map(mul, a, a)), math.fsum(map(mul, b, b))
    # NOTE: one square root of the product, so a tensor compared with itself has cosine exactly 1.
    cosine = math.fsum(map(mul, a, b)) / math.sqrt(square_a * square_b) if square_a and square_b else None
    return Drift(name, list(shape if shape is not None else (len(a),)), len(a), l2,
                 l2 / math.sqrt(square_b) if square_b else None, cosine)


def compare(path_a, path_b, checkpoint_name="last.json"):
    """Compare two runs (folders or checkpoint files); returns a :class:`Comparison`.

    Raises:
        CheckpointError: a checkpoint is missing or damaged, or does not fit its config.
        ArchitectureMismatch: the two models differ; names the first layer that does.
    """
    (side_a, ckpt_a, model_a), (side_b, ckpt_b, model_b) = (
        _load(path, checkpoint_name) for path in (path_a, path_b))
    _same_architecture(model_a, model_b, side_a.path, side_b.path)
    tensors, pos = [], 0
    for i, layer in enumerate(model_a.layers):
        for name, shape in layer.param_shapes.items():
            n = len(layer.params[name])
            tensors.append(drift(ckpt_a["weights"][pos:pos + n], ckpt_b["weights"][pos:pos + n],
                                 f"{i}.{model_a.types[i]}.{name}", shape))
            pos += n
    return Comparison(side_a, side_b, tensors, drift(ckpt_a["weights"], ckpt_b["weights"]))


def _load(path, checkpoint_name):
    """``(Side, checkpoint dict, built model)`` of a run folder or checkpoint file."""
    from .config import config_from_dict

    path = Path(path)
    file = path / "checkpoints" / checkpoint_name if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        raise CheckpointError(f"{path} has no checkpoints/{checkpoint_name}; pass a run folder "
                              f"that has one, a checkpoint file, or another --checkpoint-name")
    ckpt = load_checkpoint(file)
    model = config_from_dict(ckpt["config"], name=str(file)).build_model()
    if model.num_params() != len(ckpt["weights"]):
        raise CheckpointError(f"checkpoint {file} holds {len(ckpt['weights']):,} weights but its "
                              f"config builds a model of {model.num_params():,}; it is damaged")
    accuracy, loss, source = _test_metrics(ckpt, file)
    side = Side(str(path), str(file), ckpt["epoch"], ckpt["step"], accuracy, loss, source)
    return side, ckpt, model


def _test_metrics(ckpt, file):
    """``(accuracy, loss, where from)`` of the test set at the checkpoint's weights, or Nones."""
    run = run_dir_of(file)
    evaluation = _read_eval(run / "eval.json") if run is not None else {}
    test = evaluation.get("test")
    if evaluation.get("step") == ckpt["step"] and isinstance(test, dict) and finite_number(test.get("accuracy")):
        return test["accuracy"], _number_or_none(test.get("loss")), str(run / "eval.json")
    metrics = ckpt.get("metrics") or {}
    if (not ckpt.get("step_in_epoch") and metrics.get("epoch") == ckpt["epoch"]
            and finite_number(metrics.get("test_accuracy"))):
        return (metrics["test_accuracy"], _number_or_none(metrics.get("test_loss")),
                f"{file} (epoch {ckpt['epoch']} metrics)")
    return None, None, None


def _read_eval(path):
    """``eval.json`` as a dict; ``{}`` when it is missing, too large, damaged or not a mapping.

    It only adds the test figures to the comparison, so a bad one is passed over, not fatal.
    """
    try:
        if not path.is_file() or path.stat().st_size > MAX_RUN_FILE_BYTES:
            return {}
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return evaluation if isinstance(evaluation, dict) else {}


def _number_or_none(value):
    return value if finite_number(value) else None


def _layers(model):
    """Per layer, what must match: ``(type, output shape, {parameter: shape})``."""
    return [(t, tuple(shape), dict(layer.param_shapes))
            for t, shape, layer in zip(model.types, model.shapes, model.layers)]


def _same_architecture(model_a, model_b, name_a, name_b):
    def say(layer):
        t, shape, params = layer
        inner = ", ".join(f"{p} {format_shape(s)}" for p, s in params.items())
        return f"{t} -> {format_shape(shape)}" + (f" with {inner}" if inner else "")

    if model_a.input_shape != model_b.input_shape:
        raise ArchitectureMismatch(
            f"{name_a} and {name_b} have different architectures: the input is "
            f"{format_shape(model_a.input_shape)} in A but {format_shape(model_b.input_shape)} in B; "
            f"compare runs of the same model")
    layers_a, layers_b = _layers(model_a), _layers(model_b)
    for i in range(max(len(layers_a), len(layers_b))):
        a = layers_a[i] if i < len(layers_a) else None
        b = layers_b[i] if i < len(layers_b) else None
        if a != b:
            what_a = f"{say(a)} in A" if a else f"missing in A ({len(layers_a)} layers)"
            what_b = f"{say(b)} in B" if b else f"missing in B ({len(layers_b)} layers)"
            raise ArchitectureMismatch(
                f"{name_a} and {name_b} have different architectures: layer {i} is {what_a} but "
                f"{what_b}; compare runs of the same model")


# -- output ----------------------------------------------------------------------------

def format_comparison(c):
    """The comparison as the table ``paracnn compare`` prints."""
    lines = [_describe("A", c.a), _describe("B", c.b),
             "drift of A from B (relative change = ||A - B|| / ||B||):"]
    width = max([len(t.name) for t in c.tensors] + [7]) + 2
    lines.append(f"{'tensor':<{width}}{'shape':<18}{'values':>9}{'L2':>12}{'rel. change':>13}"
                 f"{'cosine':>9}")
    for t in c.tensors + [c.overall]:
        shape = "" if t is c.overall else format_shape(t.shape)
        lines.append(f"{t.name:<{width}}{shape:<18}{t.size:>9,}{t.l2:>12.4f}"
                     f"{_ratio(t.relative_change):>13}{_ratio(t.cosine):>9}")
    return "\n".join(lines)


def _describe(letter, side):
    if side.test_accuracy is None:
        result = "not evaluated at these weights (run paracnn evaluate --checkpoint on it)"
    else:
        loss = "-" if side.test_loss is None else f"{side.test_loss:.4f}"
        result = f"test accuracy {100 * side.test_accuracy:.2f} %, loss {loss}"
    return f"{letter}  {side.checkpoint} (epoch {side.epoch}, step {side.step}): {result}"


def _ratio(value):
    return "-" if value is None else f"{value:.4f}"


def compare_from_cli(args):
    c = compare(args.run_a, args.run_b, args.checkpoint_name)
    print(json.dumps(c.to_dict(), indent=1) if args.json else format_comparison(c))
    return 0
