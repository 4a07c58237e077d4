"""``paracnn predict``: ask a trained model about one's own pictures.

Each image is read with Pillow, prepared as MNIST was made
(:mod:`.preprocess`), normalised as the checkpoint's run normalised its data,
and answered with the top-K classes. An image that cannot be used gets one
line naming it; the others are still answered, and the command exits 2.
"""

import json
import sys

from ..errors import ParacnnError
from ..trained import load_model
from .preprocess import ImageProblem, prepare, read_image


def predict_image(trained, path, *, top=3, invert="auto"):
    """The top-``top`` classes of the picture at ``path``: a JSON-ready dict.

    Returns ``{"image", "inverted", "top": [{"class", "name", "probability"}, ...]}``.

    Raises:
        ImageProblem: the file cannot be read, or holds no ink.
    """
    prepared = prepare(read_image(path), trained.model.input_shape, invert, name=str(path))
    probs = trained.model.probabilities(trained.input(prepared.pixels))
    order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:top]
    return {"image": str(path), "inverted": prepared.inverted,
            "top": [{"class": c, "name": trained.classes[c], "probability": probs[c]} for c in order]}


def check_input_shape(shape, path):
    """predict reads grayscale pictures: the model must take ``(1, H, W)``."""
    if len(shape) != 3 or shape[0] != 1:
        raise ParacnnError(f"checkpoint {path} takes inputs of shape {tuple(shape)}; paracnn predict "
                           f"reads grayscale pictures and needs a model of input shape (1, H, W)")


def predict_from_cli(args):
    """``paracnn predict --checkpoint CKPT IMAGE... [--top K] [--json] [--invert auto|yes|no]``."""
    if args.top < 1:
        raise ParacnnError(f"--top must be 1 or more, not {args.top}")
    from .extras import require
    require("PIL.Image", "paracnn predict")  # NOTE: before loading the model, not after
    trained = load_model(args.checkpoint)
    check_input_shape(trained.model.input_shape, trained.path)
    top = min(args.top, len(trained.classes))
    answers, failed = [], 0
    for path in args.images:
        try:
            answer = predict_image(trained, path, top=top, invert=args.invert)
        except ImageProblem as e:
            failed += 1
            print(f"paracnn: error: {e}", file=sys.stderr)
            answers.append({"image": str(path), "error": str(e)})
            continue
        answers.append(answer)
        if not args.json:
            print(format_answer(answer))
    if args.json:
        print(json.dumps({"checkpoint": trained.path, "predictions": answers}, indent=1))
    return 2 if failed else 0


def format_answer(answer):
    """``digit.png: 7 (98.1 %), then 9 (1.2 %), 2 (0.3 %)``."""
    best, *rest = answer["top"]
    line = f"{answer['image']}: {best['name']} ({100 * best['probability']:.1f} %)"
    if rest:
        line += ", then " + ", ".join(f"{r['name']} ({100 * r['probability']:.1f} %)" for r in rest)
    return line
