"""Seed 001's robustness study: a clean model, pixel jitter and label corruption at 5-20 %, weight drift.

Usage::

    PARACNN_DATA_DIR=/work/shared/data python scripts/study_robustness.py --out results/robustness \
        [--config configs/lenet.yaml] [--epochs 1] [--levels 5,10,15,20] [--chance 1e-6] \
        [--validation 0.1] [--train-limit N] [--test-limit N] [--workers 1] [--backend local|ray] [--address ADDR]

Ten runs of one config, seed and number of epochs (with the default levels):
``clean``; ``chance``, the clean run with Gaussian noise of sigma 1e-6 on its
inputs (``data.augment.noise``), whose drift is what chance alone does to SGD's
path and the baseline every other drift is read against; ``jitter_<L>pct``
with ``data.augment.jitter`` at L %; and ``corrupt_<L>pct`` with
``data.label_noise`` at L % (seed 001 calls these "noise" and "corrupt"). Every run gets the same ``data.validation``, given
here explicitly, so the study does not depend on what the config ships. Each
run trains into ``OUT/<name>``; then the *final* weights of each run
(``checkpoints/last.json``) are compared with the clean run's by
:func:`paracnn.compare.compare`: overall L2 distance, relative change
``||run - clean|| / ||clean||`` and cosine similarity, as in seed 001's Table 1.
The table (accuracy, loss, drift, seed 001's figures alongside, time per run)
is printed and written to ``OUT/robustness.md`` and ``OUT/robustness.json``.

A run folder in ``OUT`` that already finished is reused, and one that was
interrupted is resumed from its checkpoint (to the same weights), so running
the same command again continues a study instead of recomputing it.

The runs go through the Python API (:func:`paracnn.train.train`), not the
CLI: one process for all runs, the result (history, workers) comes back as a
dict instead of parsed text, and errors arrive as exceptions printed as one line.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from paracnn.checkpoint import load_checkpoint, resume_config
from paracnn.compare import compare
from paracnn.config import Override, load_config
from paracnn.errors import CheckpointError, ParacnnError
from paracnn.runfolder import count
from paracnn.signals import ignore_signals_outside_the_run
from paracnn.train import TrainingInterrupted, train

#: Seed 001's Table 1 as printed (its "noise" is pixel jitter): level -> (L2, rel. change, cosine).
SEED_001 = {
    "corrupt": {20: (13.990, 0.5478, 0.8474), 15: (13.500, 0.5173, 0.8585),
                10: (12.613, 0.4824, 0.8684), 5: (11.683, 0.4110, 0.9082)},
    "jitter": {20: (12.354, 0.4819, 0.8966), 15: (12.134, 0.4570, 0.9116),
               10: (10.930, 0.3904, 0.9350), 5: (8.755, 0.2985, 0.9526)},
}
SEED_001_NAME = {"jitter": "noise", "corrupt": "corrupt"}
#: the config key each kind of perturbation sets, and what turns its level into the key's value.
KEYS = {"jitter": (("data", "augment", "jitter"), 0.01), "corrupt": (("data", "label_noise"), 0.01),
        "chance": (("data", "augment", "noise"), 1.0)}


def main(argv=None):
    args = parse_args(argv)
    try:
        levels = parse_levels(args.levels)
        if not 0 <= args.chance < 1:
            raise ParacnnError(f"--chance {args.chance:g} is not a noise sigma in [0, 1); the "
                               f"default 1e-6 is far below any image's detail, 0 leaves the run out")
        workers = parse_workers(args.workers)
        rows = run_study(args, levels, workers)
    except TrainingInterrupted as e:
        print(f"study_robustness: {e}; run the same command again to resume the study",
              file=sys.stderr)
        return e.exit_code
    except ParacnnError as e:
        print(f"study_robustness: {e}", file=sys.stderr)
        return e.exit_code
    out = Path(args.out)
    table = format_table(rows)
    print(table)
    (out / "robustness.md").write_text(table + "\n", encoding="utf-8")
    about = summary(args, levels, workers, rows)
    (out / "robustness.json").write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'robustness.md'} and {out / 'robustness.json'}")
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/lenet.yaml", help="the config every run trains "
                   "(default configs/lenet.yaml)")
    p.add_argument("--out", required=True, help="the study folder: one run folder per run, and "
                   "robustness.md / robustness.json")
    p.add_argument("--epochs", type=int, help="train.epochs for every run (default: the config's)")
    p.add_argument("--levels", default="5,10,15,20", help="percentages of jitter and of label "
                   "corruption, comma-separated (default 5,10,15,20)")
    p.add_argument("--chance", type=float, default=1e-6, help="sigma of the input noise of the "
                   "chance run (default 1e-6; 0 leaves the run out)")
    p.add_argument("--validation", type=float, default=0.1, help="data.validation for every run "
                   "(default 0.1)")
    p.add_argument("--train-limit", type=int, help="data.train_limit: train on the first N images")
    p.add_argument("--test-limit", type=int, help="data.test_limit: test on the first N images")
    p.add_argument("--workers", help="worker processes for training (a number or auto; default: "
                   "the config's train.workers)")
    p.add_argument("--backend", choices=("local", "ray"), help="train.backend for every run")
    p.add_argument("--address", help="the Ray cluster to join with --backend ray")
    p.add_argument("--data-dir", help="the dataset folder (default: data.dir or $PARACNN_DATA_DIR)")
    return p.parse_args(argv)


def parse_levels(text):
    """``"5,10"`` -> ``[5, 10]``: percentages strictly between 0 and 100, without repeats."""
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError:
        levels = None
    if not levels or any(not 0 < v < 100 for v in levels) or len(set(levels)) != len(levels):
        raise ParacnnError(f"--levels {text!r} is not a list of different percentages between 0 "
                           f"and 100; write them comma-separated, e.g. --levels 5,10,15,20")
    return [int(v) if v == int(v) else v for v in levels]


def parse_workers(text):
    if text is None or text == "auto":
        return text
    if text.isdigit():
        return int(text)
    raise ParacnnError(f"--workers {text!r} is not a number of worker processes; give 0, 1, 2, "
                       f"... or auto")


def runs(levels, chance=0.0):
    """``[(name, kind, level), ...]``: the clean run first, the chance run, jitter, label corruption."""
    out = [("clean", None, 0)] + ([("chance", "chance", chance)] if chance else [])
    for kind in ("jitter", "corrupt"):
        out += [(f"{kind}_{level:g}pct", kind, level) for level in levels]
    return out


def overrides(args, kind, level):
    """The Overrides that make one run of the study; errors cite the study's option."""
    ovs = [Override(f"--validation {args.validation:g}", ("data", "validation"), args.validation)]
    if args.epochs is not None:
        ovs.append(Override(f"--epochs {args.epochs}", ("train", "epochs"), args.epochs))
    for option, key in (("--train-limit", "train_limit"), ("--test-limit", "test_limit")):
        value = getattr(args, key)
        if value is not None:
            ovs.append(Override(f"{option} {value}", ("data", key), value))
    # NOTE: both keys are set in every run, so the clean run is clean whatever the config holds.
    for each, (path, scale) in KEYS.items():
        value = level * scale if each == kind else 0.0
        label = f"--chance {value:g}" if each == "chance" else f"--levels ({each} {value:g})"
        ovs.append(Override(label, path, value))
    return ovs


def run_study(args, levels, workers):
    """Train (or reuse) every run, then measure each one's drift from the clean run; the rows."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ParacnnError(f"--out {out} is a file; give a folder for the study's runs")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, kind, level in runs(levels, args.chance):
        config = load_config(args.config, overrides(args, kind, level))
        rows.append(train_one(args, out / name, config, workers, name, kind, level))
    clean = out / "clean"
    for row in rows:
        c = compare(out / row["run"], clean)
        row.update(test_accuracy=c.a.test_accuracy, test_loss=c.a.test_loss,
                   l2=c.overall.l2, relative_change=c.overall.relative_change,
                   cosine=c.overall.cosine, checkpoint=c.a.checkpoint)
    return rows


def train_one(args, run_dir, config, workers, name, kind, level):
    """Train one run into ``run_dir``, resuming or reusing what is there; its row (no drift yet)."""
    log = Prefixed(name)
    last = run_dir / "checkpoints" / "last.json"
    resume = None
    if last.is_file():
        ckpt = load_checkpoint(last)
        epochs, saved = config.data["train"]["epochs"], ckpt["config"]["train"]["epochs"]
        if saved != epochs:
            raise ParacnnError(f"{run_dir} holds a run of {count(saved, 'epoch')}, not {epochs}; "
                               f"give another --out, or the same --epochs as before to reuse it")
        try:
            resume_config(config, ckpt)
        except CheckpointError as e:
            raise ParacnnError(f"cannot reuse {run_dir} for the {name} run: {e}; give another --out")
        resume = run_dir
    start = time.perf_counter()
    result = train(config, workers=workers, run_dir=run_dir, resume=resume, data_dir=args.data_dir,
                   progress=False, log=log, overwrite=resume is None, backend=args.backend,
                   address=args.address)
    if result["finished_before"]:
        how = "reused"
        log(f"reused the finished run in {run_dir}")
    else:
        how = "resumed" if resume is not None else "trained"
        log(f"{how} in {time.perf_counter() - start:.0f} s")
    history = result["history"]
    final = result["final"] or {}
    return {"run": name,
            "seed_001": f"{SEED_001_NAME[kind]}_{level:g}pct" if kind in SEED_001_NAME else name,
            "jitter": level / 100 if kind == "jitter" else 0.0,
            "label_noise": level / 100 if kind == "corrupt" else 0.0,
            "noise": level if kind == "chance" else 0.0, "how": how,
            "epochs": result["epochs"], "val_accuracy": final.get("val_accuracy"),
            "val_loss": final.get("val_loss"),
            # NOTE: from metrics.jsonl, so a reused run reports the time it took when it trained.
            "seconds": sum(r.get("seconds", 0.0) for r in history),
            "workers": final.get("workers"), "samples_per_second": final.get("samples_per_second")}


class Prefixed:
    """A ``log`` for :func:`train` that marks each line with the run's name (a class: it pickles)."""

    def __init__(self, name):
        self.prefix = f"[{name}] "

    def __call__(self, line):
        print(self.prefix + str(line), flush=True)


def format_table(rows):
    """The study as a markdown table, seed 001's Table 1 figures in the last column."""
    lines = ["| run | val acc. | val loss | test acc. | test loss | L2 | rel. change | cosine "
             "| seed 001 (L2 / rel. / cos.) | time | how |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        kind, _, level = r["run"].partition("_")
        ref = SEED_001.get(kind, {}).get(_level(level))
        seed = f"{r['seed_001']}: {ref[0]:.3f} / {ref[1]:.4f} / {ref[2]:.4f}" if ref else "-"
        lines.append(f"| {r['run']} | {_percent(r['val_accuracy'])} | {_number(r['val_loss'])} "
                     f"| {_percent(r['test_accuracy'])} | {_number(r['test_loss'])} "
                     f"| {r['l2']:.3f} | {_number(r['relative_change'])} | {_number(r['cosine'])} "
                     f"| {seed} | {r['seconds']:.0f} s | {r['how']} |")
    return "\n".join(lines)


def summary(args, levels, workers, rows):
    """What ``robustness.json`` holds: the settings, this process's interpreter and the rows."""
    return {"config": args.config, "epochs": rows[0]["epochs"], "levels": levels, "chance": args.chance,
            "validation": args.validation, "train_limit": args.train_limit,
            "test_limit": args.test_limit, "workers": workers, "backend": args.backend,
            "interpreter": interpreter(), "rows": rows}


def interpreter():
    """``CPython 3.11.9`` or ``PyPy 7.3.11 (Python 3.9.16)``."""
    pypy = getattr(sys, "pypy_version_info", None)
    if pypy is not None:
        return f"PyPy {pypy.major}.{pypy.minor}.{pypy.micro} (Python {platform.python_version()})"
    return f"{platform.python_implementation()} {platform.python_version()}"


def _level(text):
    try:
        value = float(text[:-len("pct")])
    except ValueError:
        return None
    return int(value) if value == int(value) else value


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f} %"


def _number(value):
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    # NOTE: as paracnn train does: a signal outside a run (between runs) must not end the study
    # with a traceback; inside one, the run saves a checkpoint, and rerunning resumes it.
    ignore_signals_outside_the_run()
    sys.exit(main())
