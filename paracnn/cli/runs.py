"""``paracnn train``, ``evaluate``, ``compare`` and ``profile``: the commands that run a model."""

from pathlib import Path

from ..errors import ParacnnError
from .options import WORKERS_HELP, add_config, add_option, add_options, load, shorthand_overrides


def register(command):
    """Add the subcommands of this module; ``command(name, help)`` makes a subparser."""
    p = command("train", "train a model")
    add_config(p, optional=True)
    p.add_argument("--run-dir", metavar="D", help="where to write checkpoints and metrics")
    p.add_argument("--resume", metavar="RUN", help="continue the run in directory RUN")
    add_options(p, "--workers", "--start-method", "--data-dir")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (on a terminal) or progress lines (otherwise)")
    p.add_argument("--overwrite", action="store_true",
                   help="if --run-dir holds another run, move it to D.old-<time> and start afresh")
    p.add_argument("--quiet", action="store_true",
                   help="leave out each epoch's systems line (samples/s, time split, memory)")
    add_options(p, "--backend", "--address")
    p.set_defaults(handler=cmd_train)

    p = command("evaluate", "evaluate a checkpoint on its test set")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?",
                   help="a checkpoint file, or a run folder (its checkpoints/last.json)")
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="FILE",
                   help="the same as CHECKPOINT (the older spelling)")
    add_option(p, "--set")
    add_option(p, "--json", help="print JSON")
    add_option(p, "--workers", help=WORKERS_HELP + " (default auto)")
    add_options(p, "--start-method", "--data-dir", "--backend", "--address")
    p.set_defaults(handler=cmd_evaluate)

    p = command("compare", "compare two runs' weights per tensor: L2 distance, relative change, cosine")
    p.add_argument("run_a", metavar="RUN_A", help="a run folder or checkpoint file")
    p.add_argument("run_b", metavar="RUN_B", help="the reference run folder or checkpoint file")
    p.add_argument("--checkpoint-name", default="last.json", metavar="NAME",
                   help="the checkpoint to take from a run folder (default last.json; e.g. best.json)")
    add_option(p, "--json")
    p.set_defaults(handler=cmd_compare)

    p = command("profile", "measure how the training step scales with worker processes")
    add_config(p)
    add_option(p, "--workers", type=str, default="1,2,4,8", metavar="LIST",
               help="worker counts, comma-separated; auto is the count train would "
                    "start (default 1,2,4,8)")
    add_options(p, "--start-method", "--data-dir")
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
    add_options(p, "--backend", "--address")
    p.set_defaults(handler=cmd_profile)


def cmd_train(args):
    extra = shorthand_overrides(args, "--workers", "--start-method", "--data-dir",
                                "--backend", "--address")
    if args.config is None:
        if not args.resume:
            raise ParacnnError("train needs a CONFIG file (or --resume RUN to continue a run)")
        saved = Path(args.resume) / "config.yaml"
        if args.overrides and not saved.is_file():
            raise ParacnnError(f"--set needs a CONFIG; {saved} does not exist")
        # No --set: the trainer takes the run's saved config itself (flags still apply).
        config = load(args, extra, path=saved) if args.overrides else None
    else:
        config = load(args, extra)
    from ..train import train_from_cli
    return train_from_cli(args, config) or 0


def cmd_evaluate(args):
    flag = args.checkpoint_flag
    if flag is not None and args.checkpoint is not None and flag != args.checkpoint:
        raise ParacnnError(f"two checkpoints given ({args.checkpoint} and --checkpoint {flag}); "
                           f"pass one")
    args.checkpoint = args.checkpoint or flag
    if args.checkpoint is None:
        raise ParacnnError("evaluate needs a CHECKPOINT: a checkpoint file or a run folder, e.g. "
                           "paracnn evaluate runs/lenet-20261122-101500")
    from ..train import evaluate_from_cli
    return evaluate_from_cli(args) or 0


def cmd_compare(args):
    from ..compare import compare_from_cli
    return compare_from_cli(args)


def cmd_profile(args):
    config = load(args, shorthand_overrides(args, "--batch-size", "--backend", "--address"))
    from ..profiling import parse_workers, profile_from_cli
    from ..workers import check_worker_counts
    check_worker_counts(parse_workers(args.workers, config.data["train"]))
    # NOTE: an output that cannot be written is refused now, not after minutes of measuring.
    from ..files import check_can_write
    for path in (args.json, args.csv, args.plot):
        if path:
            check_can_write(path)
    return profile_from_cli(args, config)
