"""``paracnn plot``, ``predict`` and ``export``: a trained model drawn, used and handed to PyTorch.

Each needs an optional extra (matplotlib, Pillow, safetensors), which the tool
imports itself; a missing one is one line naming the install command.
"""

from .options import add_option


def register(command):
    """Add the subcommands of this module; ``command(name, help)`` makes a subparser."""
    p = command("plot", "draw a run's curves, confusion matrix, filters, feature maps and saliency")
    p.add_argument("run", metavar="RUN", help="a run folder written by paracnn train")
    p.add_argument("--out", metavar="DIR", help="where to write the PNGs (default RUN/plots)")
    p.add_argument("--images", type=int, default=4, metavar="N",
                   help="test images for the feature-map and saliency figures (default 4)")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="the checkpoint to run (default RUN/checkpoints/best.json, else last.json)")
    add_option(p, "--data-dir", help="the folder holding the datasets")
    p.set_defaults(handler=cmd_plot)

    p = command("predict", "classify your own pictures with a trained model")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the checkpoint to use")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or PGM files")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes to show (default 3)")
    add_option(p, "--json", help="print JSON")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="make the ink white on black: auto inverts when the background is light")
    p.set_defaults(handler=cmd_predict)

    p = command("export", "write a checkpoint's weights as safetensors for PyTorch")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the checkpoint to export")
    p.add_argument("out", metavar="OUT.safetensors", help="the file to write (never the checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(handler=cmd_export)


def cmd_plot(args):
    from ..tools.plot import plot_from_cli
    return plot_from_cli(args)


def cmd_predict(args):
    from ..tools.predict import predict_from_cli
    return predict_from_cli(args)


def cmd_export(args):
    from ..tools.export import export_from_cli
    return export_from_cli(args)
