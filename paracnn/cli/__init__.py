"""The ``paracnn`` command: argparse subcommands, nothing else.

Every :class:`~paracnn.errors.ParacnnError` ends the command with one line on
stderr and its ``exit_code``: 2 for bad input (config errors start
``FILE:LINE:COL:``), 1 for a run that failed (NaN, a layer that raised), 3 for
workers that kept dying; ``--debug`` adds the traceback. Ctrl-C exits with 130
and SIGTERM with 143. ``docs/errors.md`` lists them all.

Each module adds its own subcommands: :mod:`.models` (layers, summary, check),
:mod:`.runs` (train, evaluate, compare, profile) and :mod:`.tools` (plot,
predict, export); :mod:`.options` declares the options they share, and
:mod:`.epilogs` the examples under each ``--help``.
"""

import argparse
import signal
import sys
import traceback

from .. import __version__
from ..errors import ParacnnError
from . import models, runs, tools
from .epilogs import EPILOGS
from .options import DEBUG

__all__ = ["EPILOGS", "build_parser", "entry", "main"]


def build_parser():
    """The ``paracnn`` parser: one subparser per command, each added by the module that runs it."""
    parser = argparse.ArgumentParser(
        prog="paracnn", parents=[DEBUG], epilog=EPILOGS["main"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A pure-Python convolutional network trainer that scales across CPU cores.")
    parser.add_argument("--version", action="version", version=f"paracnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text):
        return sub.add_parser(name, parents=[DEBUG], help=help_text, description=help_text,
                              epilog=EPILOGS[name], formatter_class=argparse.RawDescriptionHelpFormatter)

    for module in (models, runs, tools):
        module.register(command)
    from ..scaffold import add_parser as add_new_layer_parser
    add_new_layer_parser(sub, parents=[DEBUG])
    return parser


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
