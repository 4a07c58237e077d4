"""``paracnn layers``, ``summary`` and ``check``: what the layers and a model are, before training."""

import json
import math
import random
import re
import sys

from ..layer import format_shape
from .options import add_config, add_option, load


def register(command):
    """Add the subcommands of this module; ``command(name, help)`` makes a subparser."""
    p = command("layers", "list the registered layer types and where they come from")
    add_option(p, "--json")
    p.set_defaults(handler=cmd_layers)

    p = command("summary", "show each layer's output shape, parameters and MACs")
    add_config(p)
    add_option(p, "--json")
    p.set_defaults(handler=cmd_summary)

    p = command("check", "validate a config, build the model and check its gradients")
    add_config(p)
    p.set_defaults(handler=cmd_check)


def cmd_layers(args):
    from ..registry import get_registry
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
    print(f"{s['config']}: input {format_shape(s['input_shape'])}")
    width = max(len(r["type"]) for r in s["layers"]) + 2
    print(f"{'#':>3}  {'type':<{width}}{'output':<16}{'params':>10}{'MACs':>14}")
    for r in s["layers"]:
        print(f"{r['index']:>3}  {r['type']:<{width}}{format_shape(r['output_shape']):<16}"
              f"{r['params']:>10,}{r['macs']:>14,}")
    print(f"total: {s['total_params']:,} parameters, {s['total_macs']:,} MACs per sample, "
          f"output {format_shape(s['output_shape'])}")


def cmd_summary(args):
    config = load(args)
    s = summarize(config, config.build_model())
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_summary(s)
    return 0


def cmd_check(args):
    config = load(args)
    model = config.build_model()
    print(f"config ok: {config.path}")
    for line in config.warnings():
        print(line)
    print_summary(summarize(config, model))

    rng = random.Random(config.data["train"]["seed"])
    x = [rng.uniform(-0.5, 0.5) for _ in range(math.prod(model.input_shape))]
    from ..contract import check_model_contract
    from ..errors import LayerContractError
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

    from ..testing import check_model
    try:
        report = check_model(model, x, label=0, seed=0)
    except AssertionError as e:
        layer = getattr(e, "layer", None)
        where = "" if layer is None else config.where(("model", "layers", layer)) + ": "
        print(f"gradient check: FAILED: {where}{e}", file=sys.stderr)
        return 1
    print(f"gradient check: ok ({gradient_report(report)})")
    return 0


def gradient_report(report):
    """``check_model``'s report in one line: elements and tensors checked, the worst error."""
    checked = getattr(report, "checked", None)
    if checked is None or not hasattr(report, "max_rel_error"):
        return str(report)
    return (f"{sum(checked.values())} elements of {len(checked)} tensors, "
            f"max relative error {report.max_rel_error():.2e}")
