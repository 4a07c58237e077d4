"""The options several subcommands share, each declared once, and the config values they stand for.

A subcommand takes a shared option with :func:`add_option` (``changes``
adjust it where that command differs, e.g. its default), so the flag, its
metavar and its help are written in one place. :data:`SHORTHANDS` maps the
flags that are shorthands for a config value to that value's key path.
"""

import argparse

#: ``--debug`` is accepted before and after the subcommand: every parser takes this parent.
DEBUG = argparse.ArgumentParser(add_help=False)
DEBUG.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of errors")


def worker_count(text):
    """``auto`` or a number; anything else goes on to the schema, whose error cites the flag."""
    try:
        return int(text)
    except ValueError:
        return text


WORKERS_HELP = ("worker processes: auto (recommended: min(usable CPUs, micro-batches per step)), "
                "0 (in-process) or a number")

#: Every option that more than one subcommand takes: flag -> ``add_argument`` keywords.
OPTIONS = {
    "--set": {"dest": "overrides", "action": "append", "default": [], "metavar": "KEY=VALUE",
              "help": "override a config value, e.g. --set train.lr=0.01 (repeatable; "
                      "VALUE is read as YAML)"},
    "--workers": {"type": worker_count, "metavar": "N",
                  "help": WORKERS_HELP + "; default train.workers"},
    "--start-method": {"choices": ("fork", "spawn", "forkserver"), "metavar": "M",
                       "help": "multiprocessing start method: fork, spawn or forkserver"},
    "--data-dir": {"metavar": "D", "help": "the folder holding (or receiving) the datasets"},
    "--backend": {"choices": ("local", "ray"), "metavar": "B",
                  "help": 'where workers run: local processes, or ray actors across a cluster '
                          '(needs "paracnn[ray]"; see docs/distributed.md)'},
    "--address": {"metavar": "A",
                  "help": "with --backend ray: the cluster to join (auto or HOST:PORT); "
                          "default: start a local Ray"},
    "--json": {"action": "store_true", "help": "print JSON instead of a table"},
}

#: The flags that stand for a config value: ``--workers 2`` is ``--set train.workers=2``.
SHORTHANDS = {
    "--workers": ("train", "workers"),
    "--start-method": ("train", "start_method"),
    "--data-dir": ("data", "dir"),
    "--backend": ("train", "backend"),
    "--address": ("train", "ray_address"),
    "--batch-size": ("train", "batch_size"),
}


def add_option(parser, flag, **changes):
    """Add the shared option ``flag`` (a key of :data:`OPTIONS`) to ``parser``, with ``changes``."""
    parser.add_argument(flag, **{**OPTIONS[flag], **changes})


def add_options(parser, *flags):
    """Add the shared options ``flags``, in that order, as they are declared."""
    for flag in flags:
        add_option(parser, flag)


def add_config(parser, optional=False):
    """The CONFIG argument and ``--set``, as every command that reads a config takes them."""
    parser.add_argument("config", metavar="CONFIG", nargs="?" if optional else None,
                        help="a YAML config file, e.g. configs/lenet.yaml"
                             + (" (optional with --resume: the run's own config)" if optional else ""))
    add_option(parser, "--set")


def shorthand_overrides(args, *flags):
    """The config overrides that the ``flags`` given on the command line stand for, in that order.

    Each is labelled with its flag (``--workers 2``), so an error in its value cites the flag.
    """
    from ..config import Override
    out = []
    for flag in flags:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            out.append(Override(f"{flag} {value}", SHORTHANDS[flag], value))
    return out


def load(args, extra=(), path=None):
    """The config of ``args.config`` (or ``path``), with ``extra`` overrides before ``--set``'s."""
    from ..config import load_config
    return load_config(path or args.config, list(extra) + list(args.overrides))
