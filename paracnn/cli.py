"""The ``paracnn`` command: argparse subcommands, nothing else.

Every :class:`~paracnn.errors.ParacnnError` ends the command with one line on
stderr and its ``exit_code``: 2 for bad input (config errors start
``FILE:LINE:COL:``), 1 for a run that failed (NaN, a layer that raised), 3 for
workers that kept dying; ``--debug`` adds the traceback. Ctrl-C exits with 130
and SIGTERM with 143. ``docs/errors.md`` lists them all.
"""

import argparse
import json
import math
import random
import re
import signal
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import ParacnnError

EPILOGS = {
    "main": """examples:
  paracnn layers                              list the layer types (built-in and plugins)
  paracnn summary configs/lenet.yaml          shapes, parameters and MACs per layer
  paracnn check configs/lenet.yaml            validate, build and gradient-check a model
  paracnn train configs/lenet.yaml --workers auto
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json
  paracnn profile configs/lenet.yaml --workers 1,2 --synthetic
  paracnn new-layer my_layer --dir plugins    scaffold a layer-plugin package

Set PARACNN_DISABLE_PLUGINS=1 to use the built-in layers only.""",
    "layers": """examples:
  paracnn layers
  paracnn layers --json | python -m json.tool
  PARACNN_DISABLE_PLUGINS=1 paracnn layers      built-in layers only""",
    "summary": """examples:
  paracnn summary configs/lenet.yaml
  paracnn summary configs/lenet.yaml --set model.layers.0.filters=8
  paracnn summary configs/tiny.yaml --json""",
    "check": """Validates the config, builds the model, checks every layer's contract (output
and dx lengths, gradients added rather than assigned), runs one forward/backward
pass and a finite-difference gradient check of the whole model on one sample.
Exit status 0 only if everything passes; 1 if a check fails (naming the layer's
line); 2 for a config error.

examples:
  paracnn check configs/lenet.yaml
  paracnn check configs/simple.yaml --set train.lr=0.01""",
    "train": """--workers, --start-method and --data-dir are shorthands for --set
train.workers=N, --set train.start_method=M and --set data.dir=D.
--workers auto (recommended) starts min(usable CPUs, micro-batches per step)
workers; more than either only wait, and a warning says so. --backend B and
--address A are shorthands for --set train.backend=B and --set train.ray_address=A.

examples:
  paracnn train configs/lenet.yaml --workers auto
  paracnn train configs/lenet.yaml --workers auto --set data.train_limit=2000 --set data.test_limit=500
  paracnn train configs/lenet.yaml --workers auto --run-dir runs/lenet
  paracnn train configs/tiny.yaml --set train.epochs=3 --set train.lr=0.1
  paracnn train configs/lenet.yaml --resume runs/lenet
  paracnn train configs/lenet.yaml --backend ray --workers 8 --address auto    on a Ray cluster
  paracnn train --resume runs/lenet              continue with the run's saved config
  paracnn train --resume runs/lenet --set train.epochs=3   ...and train for longer
  paracnn train configs/lenet.yaml --run-dir runs/lenet --overwrite   start afresh there

A --run-dir that already holds a run is refused (exit 2): continue it with
--resume, or start afresh with --overwrite, which moves the old folder aside.
Each epoch prints an ML line (losses, accuracies, lr, time) and a systems line
(samples/s, compute/wait/tail/reduce+update seconds, memory, CPU); --quiet
leaves out the systems line. Without a terminal, a progress line appears every
train.log_every steps (at most every 2 s, at least every 30 s).""",
    "evaluate": """Evaluates on the checkpoint's own validation and test sets; --set changes its
data: (or train:) settings, for instance the full test set after training on a
subset, or another dataset of the same image shape and classes. --workers
defaults to auto, whatever the run trained with.

examples:
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json
  paracnn evaluate runs/lenet-20261122-101500 --set data.test_limit=null
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json --set data.dataset=fashion-mnist
  paracnn evaluate runs/lenet-20261122-101500/checkpoints/best.json --workers 2 --json""",
    "compare": """Per parameter tensor and overall: the L2 distance ||A - B||, the relative change
||A - B|| / ||B|| (B is the reference) and the cosine similarity, plus both
runs' test accuracy and loss. The runs must have the same architecture.

examples:
  paracnn compare runs/jitter-10 runs/clean
  paracnn compare runs/a runs/b --checkpoint-name best.json
  paracnn compare runs/a/checkpoints/last.json runs/b --json""",
    "profile": """Times the in-process serial step, then the step on each worker count, and
calibrates what the hardware delivers before, during and after each run: the
model's own training step (forward and backward on fixed inputs, no
communication) in 1 and in as many processes at once. Reports speedup,
efficiency, Karp-Flatt, relative efficiency (speedup over that calibration)
and an Amdahl fit with predicted speedups. A fixed pure-CPU burn, the same for
every model, is measured too, as a yardstick for comparing machines.

examples:
  paracnn profile configs/lenet.yaml --workers 1,2 --synthetic
  paracnn profile configs/lenet.yaml --workers 1,auto --synthetic
  paracnn profile configs/lenet.yaml --workers 1,2,4,8 --steps 10 --json p.json --plot p.png
  paracnn profile configs/tiny.yaml --workers 1,2 --layers --csv p.csv""",
    "plot": """Writes PNG figures of a run and RUN/report.html, one self-contained page with
the config, the metrics and every figure: per-step and per-epoch curves, the
test confusion matrix, every conv layer's filters, feature maps and saliency
of chosen test images, a grid of test predictions and the most confident
mistakes. The model runs in-process from checkpoints/best.json (last.json
when there is no best.json). Needs matplotlib: pip install "paracnn[plot]".

examples:
  paracnn plot runs/lenet-20261122-101500
  paracnn plot runs/lenet --images 6 --out figures
  paracnn plot runs/lenet --checkpoint runs/lenet/checkpoints/last.json""",
    "predict": """Prepares each picture as MNIST was made (grayscale, inverted when the
background is light, cropped to the ink, scaled into a 20x20 box, centred by
its centre of mass in 28x28) and prints the most likely classes. Reads PNG,
JPEG, BMP and PGM. Needs Pillow: pip install "paracnn[image]".

examples:
  paracnn predict --checkpoint runs/lenet/checkpoints/best.json my_seven.png
  paracnn predict --checkpoint runs/lenet/checkpoints/best.json *.png --top 1 --json""",
    "export": """Writes the weights as float64 tensors named as PyTorch's nn.Sequential of the
same layers names them (0.weight, 0.bias, 3.weight, ...), and prints the
nn.Sequential that load_state_dict fills (docs/export.md). Needs safetensors:
pip install "paracnn[export]".

examples:
  paracnn export --checkpoint runs/lenet/checkpoints/best.json lenet.safetensors""",
}


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of errors")
    parser = argparse.ArgumentParser(
        prog="paracnn", parents=[common], epilog=EPILOGS["main"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A pure-Python convolutional network trainer that scales across CPU cores.")
    parser.add_argument("--version", action="version", version=f"paracnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text):
        return sub.add_parser(name, parents=[common], help=help_text, description=help_text,
                              epilog=EPILOGS[name], formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("layers", "list the registered layer types and where they come from")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_layers)

    p = command("summary", "show each layer's output shape, parameters and MACs")
    _config_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_summary)

    p = command("check", "validate a config, build the model and check its gradients")
    _config_args(p)
    p.set_defaults(handler=cmd_check)

    p = command("train", "train a model")
    _config_args(p, optional=True)
    p.add_argument("--run-dir", metavar="D", help="where to write checkpoints and metrics")
    p.add_argument("--resume", metavar="RUN", help="continue the run in directory RUN")
    _worker_args(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (on a terminal) or progress lines (otherwise)")
    p.add_argument("--overwrite", action="store_true",
                   help="if --run-dir holds another run, move it to D.old-<time> and start afresh")
    p.add_argument("--quiet", action="store_true",
                   help="leave out each epoch's systems line (samples/s, time split, memory)")
    _backend_args(p)
    p.set_defaults(handler=cmd_train)

    p = command("evaluate", "evaluate a checkpoint on its test set")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?",
                   help="a checkpoint file, or a run folder (its checkpoints/last.json)")
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="FILE",
                   help="the same as CHECKPOINT (the older spelling)")
    _set_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    _worker_args(p, default="auto")
    _backend_args(p)
    p.set_defaults(handler=cmd_evaluate)

    p = command("compare", "compare two runs' weights per tensor: L2 distance, relative change, cosine")
    p.add_argument("run_a", metavar="RUN_A", help="a run folder or checkpoint file")
    p.add_argument("run_b", metavar="RUN_B", help="the reference run folder or checkpoint file")
    p.add_argument("--checkpoint-name", default="last.json", metavar="NAME",
                   help="the checkpoint to take from a run folder (default last.json; e.g. best.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_compare)

    p = command("profile", "measure how the training step scales with worker processes")
    _config_args(p)
    _worker_args(p, profile=True)
    p.add_argument("--steps", type=int, default=5, metavar="N",
                   help="timed steps per worker count, after a warm-up step (default 5)")
    p.add_argument("--batch-size", type=int, metavar="B", help="shorthand for --set train.batch_size=B")
    p.add_argument("--synthetic", action="store_true",
                   help="synthetic images of the model's input shape and classes: no download")
    p.add_argument("--layers", action="store_true", help="add a per-layer forward/backward table")
    p.add_argument("--json", metavar="FILE", help="write the profile as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one CSV row per worker count")
    p.add_argument("--plot", metavar="FILE",
                   help='plot speedup and efficiency to a PNG (needs "paracnn[plot]")')
    _backend_args(p)
    p.set_defaults(handler=cmd_profile)

    p = command("plot", "draw a run's curves, confusion matrix, filters, feature maps and saliency")
    p.add_argument("run", metavar="RUN", help="a run folder written by paracnn train")
    p.add_argument("--out", metavar="DIR", help="where to write the PNGs (default RUN/plots)")
    p.add_argument("--images", type=int, default=4, metavar="N",
                   help="test images for the feature-map and saliency figures (default 4)")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="the checkpoint to run (default RUN/checkpoints/best.json)")
    p.add_argument("--data-dir", metavar="D", help="the folder holding the datasets")
    p.set_defaults(handler=cmd_plot)

    p = command("predict", "classify your own pictures with a trained model")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the checkpoint to use")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or PGM files")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="make the ink white on black: auto inverts when the background is light")
    p.set_defaults(handler=cmd_predict)

    p = command("export", "write a checkpoint's weights as safetensors for PyTorch")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the checkpoint to export")
    p.add_argument("out", metavar="OUT.safetensors", help="the file to write")
    p.set_defaults(handler=cmd_export)

    from .scaffold import add_parser as add_new_layer_parser
    add_new_layer_parser(sub, parents=[common])
    return parser


def _config_args(p, optional=False):
    p.add_argument("config", metavar="CONFIG", nargs="?" if optional else None,
                   help="a YAML config file, e.g. configs/lenet.yaml"
                        + (" (optional with --resume: the run's own config)" if optional else ""))
    _set_arg(p)


def _set_arg(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=0.01 (repeatable; "
                        "VALUE is read as YAML)")


def _worker_args(p, default=None, profile=False):
    """--workers, --start-method and --data-dir, as train, evaluate and profile share them."""
    if profile:
        p.add_argument("--workers", default="1,2,4,8", metavar="LIST",
                       help="worker counts, comma-separated; auto is the count train would "
                            "start (default 1,2,4,8)")
    else:
        p.add_argument("--workers", type=_worker_count, metavar="N",
                       help="worker processes: auto (recommended: min(usable CPUs, micro-batches "
                            "per step)), 0 (in-process) or a number"
                            + (f" (default {default})" if default else "; default train.workers"))
    p.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), metavar="M",
                   help="multiprocessing start method: fork, spawn or forkserver")
    p.add_argument("--data-dir", metavar="D", help="the folder holding (or receiving) the datasets")


def _worker_count(text):
    """``auto`` or a number; anything else goes on to the schema, whose error cites the flag."""
    try:
        return int(text)
    except ValueError:
        return text


def _backend_args(p):
    p.add_argument("--backend", choices=("local", "ray"), metavar="B",
                   help='where workers run: local processes, or ray actors across a cluster '
                        '(needs "paracnn[ray]"; see docs/distributed.md)')
    p.add_argument("--address", metavar="A",
                   help="with --backend ray: the cluster to join (auto or HOST:PORT); "
                        "default: start a local Ray")


def _backend_overrides(args):
    """``--backend`` and ``--address`` as config overrides."""
    extra = []
    if args.backend is not None:
        extra.append(_flag_override("--backend", args.backend, ("train", "backend")))
    if args.address is not None:
        extra.append(_flag_override("--address", args.address, ("train", "ray_address")))
    return extra


def _load(args, extra=(), path=None):
    from .config import load_config
    return load_config(path or args.config, list(extra) + list(args.overrides))


# -- commands --------------------------------------------------------------------

def cmd_layers(args):
    from .registry import get_registry
    registry = get_registry()
    rows = registry.describe()
    if args.json:
        print(json.dumps({"plugins_disabled": registry.plugins_disabled, "layers": rows}, indent=2))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    sources = [f"{r['distribution']} {r['version']}".strip() for r in rows]
    source_width = max(map(len, sources), default=0)
    for r, source in zip(rows, sources):
        print(f"{r['name']:<{width}}  {source:<{source_width}}  {r['value']}")
        if r["error"]:
            print(f"{'':<{width}}  BROKEN: {r['error']}")
        elif r["description"]:
            print(f"{'':<{width}}  {plain_text(r['description'])}")
        if r["clash"]:
            print(f"{'':<{width}}  CLASH: also registered by {', '.join(r['clash'])}; "
                  f"use {r['qualified']}")
    if registry.plugins_disabled:
        print("(plugins disabled by PARACNN_DISABLE_PLUGINS; built-in layers only)")
    return 0


def plain_text(rst):
    """A docstring line as a terminal shows it: ``code`` and :role:`~a.b.Name` without their marks."""
    text = re.sub(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", rst)
    return re.sub(r"``(.+?)``", r"\1", text)


def summarize(config, model):
    """The summary as a JSON-ready dict."""
    layers = model.summary()
    return {"config": config.path, "input_shape": list(model.input_shape), "layers": layers,
            "output_shape": list(model.output_shape),
            "total_params": sum(r["params"] for r in layers),
            "total_macs": sum(r["macs"] for r in layers)}


def print_summary(s):
    print(f"{s['config']}: input {_shape(s['input_shape'])}")
    width = max(len(r["type"]) for r in s["layers"]) + 2
    print(f"{'#':>3}  {'type':<{width}}{'output':<16}{'params':>10}{'MACs':>14}")
    for r in s["layers"]:
        print(f"{r['index']:>3}  {r['type']:<{width}}{_shape(r['output_shape']):<16}"
              f"{r['params']:>10,}{r['macs']:>14,}")
    print(f"total: {s['total_params']:,} parameters, {s['total_macs']:,} MACs per sample, "
          f"output {_shape(s['output_shape'])}")


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def cmd_summary(args):
    config = _load(args)
    s = summarize(config, config.build_model())
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_summary(s)
    return 0


def cmd_check(args):
    config = _load(args)
    model = config.build_model()
    print(f"config ok: {config.path}")
    print_summary(summarize(config, model))

    rng = random.Random(config.data["train"]["seed"])
    x = [rng.uniform(-0.5, 0.5) for _ in range(math.prod(model.input_shape))]
    from .contract import check_model_contract
    from .errors import LayerContractError
    try:
        contract = check_model_contract(model, x, config=config)
    except LayerContractError as e:
        print(f"layer contract: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"layer contract: ok ({contract})")
    model.zero_grad()
    loss, _ = model.train_sample(x, 0, seed=0)
    grads = model.get_grads()
    if not math.isfinite(loss) or not all(map(math.isfinite, grads)):
        print(f"forward/backward: FAILED: loss {loss}, non-finite gradients", file=sys.stderr)
        return 1
    print(f"forward/backward: ok (loss {loss:.4f}, {len(grads):,} finite gradients)")
    model.zero_grad()

    from .testing import check_model
    try:
        report = check_model(model, x, label=0, seed=0)
    except AssertionError as e:
        layer = getattr(e, "layer", None)
        where = "" if layer is None else config.where(("model", "layers", layer)) + ": "
        print(f"gradient check: FAILED: {where}{e}", file=sys.stderr)
        return 1
    print(f"gradient check: ok ({_report(report)})")
    return 0


def _report(report):
    checked = getattr(report, "checked", None)
    if checked is None or not hasattr(report, "max_rel_error"):
        return str(report)
    return (f"{sum(checked.values())} elements of {len(checked)} tensors, "
            f"max relative error {report.max_rel_error():.2e}")


def cmd_train(args):
    extra = []
    if args.workers is not None:
        extra.append(_flag_override("--workers", args.workers, ("train", "workers")))
    if args.start_method is not None:
        extra.append(_flag_override("--start-method", args.start_method, ("train", "start_method")))
    if args.data_dir is not None:
        extra.append(_flag_override("--data-dir", args.data_dir, ("data", "dir")))
    extra += _backend_overrides(args)
    if args.config is None:
        if not args.resume:
            raise ParacnnError("train needs a CONFIG file (or --resume RUN to continue a run)")
        saved = Path(args.resume) / "config.yaml"
        if args.overrides and not saved.is_file():
            raise ParacnnError(f"--set needs a CONFIG; {saved} does not exist")
        # No --set: the trainer takes the run's saved config itself (flags still apply).
        config = _load(args, extra, path=saved) if args.overrides else None
    else:
        config = _load(args, extra)
    from .train import train_from_cli
    return train_from_cli(args, config) or 0


def _flag_override(flag, value, path):
    from .config import Override
    return Override(f"{flag} {value}", path, value)


def cmd_evaluate(args):
    flag = args.checkpoint_flag
    if flag is not None and args.checkpoint is not None and flag != args.checkpoint:
        raise ParacnnError(f"two checkpoints given ({args.checkpoint} and --checkpoint {flag}); "
                           f"pass one")
    args.checkpoint = args.checkpoint or flag
    if args.checkpoint is None:
        raise ParacnnError("evaluate needs a CHECKPOINT: a checkpoint file or a run folder, e.g. "
                           "paracnn evaluate runs/lenet-20261122-101500")
    from .train import evaluate_from_cli
    return evaluate_from_cli(args) or 0


def cmd_compare(args):
    from .compare import compare_from_cli
    return compare_from_cli(args)


def cmd_profile(args):
    extra = []
    if args.batch_size is not None:
        extra.append(_flag_override("--batch-size", args.batch_size, ("train", "batch_size")))
    config = _load(args, extra + _backend_overrides(args))
    from .profiling import profile_from_cli
    return profile_from_cli(args, config)


def cmd_plot(args):
    from .tools.plot import plot_from_cli
    return plot_from_cli(args)


def cmd_predict(args):
    from .tools.predict import predict_from_cli
    return predict_from_cli(args)


def cmd_export(args):
    from .tools.export import export_from_cli
    return export_from_cli(args)


# -- entry point -----------------------------------------------------------------

def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except ParacnnError as e:
        if debug:
            traceback.print_exc()
        # A config error already starts FILE:LINE:COL; anything else gets the usual prefix.
        message = str(e) if getattr(e, "where", None) else f"paracnn: error: {e}"
        print(message, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("paracnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `paracnn layers | head`: the reader left; stop quietly as other Unix tools do.
        sys.stderr.close()
        return 141


def entry():
    """The ``paracnn`` command (and ``python -m paracnn``): :func:`main`, then exit with its status.

    NOTE: once the status is known, SIGINT and SIGTERM are blocked: Python's
    shutdown puts the default handlers back before it waits for the worker
    processes, and a late second Ctrl-C would then end the process with -2 instead
    of the status the run reported (130 after a first Ctrl-C, with its checkpoint).
    """
    code = main()
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(code)
