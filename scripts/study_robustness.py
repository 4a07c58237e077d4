"""Seed 001's robustness study over seeds: clean, chance, jitter, label noise, each to early stopping.

Usage::

    PARACNN_DATA_DIR=data python scripts/study_robustness.py --out results/robustness \
        [--config configs/lenet.yaml] [--seeds 3] [--max-epochs 20] [--patience 2] \
        [--levels 5,10,15,20] [--chance 1e-6] [--validation 0.1] [--train-limit N] \
        [--test-limit N] [--workers 1] [--backend local|ray] [--address ADDR] [--plot drift.png]

For every seed (``train.seed`` 0 to N-1) the study trains, into ``OUT/seed<S>/<name>``:
``clean``; ``chance``, the clean run with Gaussian noise of sigma 1e-6 on its
inputs (``data.augment.noise``), whose drift is what chance alone does to SGD's
path and the baseline every other drift is read against; ``jitter_<L>pct``
with ``data.augment.jitter`` at L %; and ``corrupt_<L>pct`` with
``data.label_noise`` at L % (seed 001 calls these "noise" and "corrupt").
Every run gets the same ``data.validation``, given here explicitly, and trains
until ``--patience`` epochs in a row have not lowered its validation loss, or
for ``--max-epochs`` (seed 001's setup: patience 2; it gives no maximum, and
20 is what ``configs/lenet.yaml`` suggests).

The weights early stopping kept (``checkpoints/best.json``, the epoch of the
lowest validation loss) are compared with those of the same seed's clean run
by :func:`paracnn.compare.compare`: overall L2 distance, relative change
``||run - clean|| / ||clean||`` and cosine similarity, as in seed 001's Table 1.
Each setting's figures are averaged over the seeds, with their standard
deviation, and its drift beyond chance (the run's less the same seed's chance
run's) is given too. A sentence per setting says whether its drift differs from
chance's, and one per level whether label noise and jitter differ, by more than
the between-seed spread (the larger of the two standard deviations). The
tables and sentences are printed and written to ``OUT/robustness.md`` and
``OUT/robustness.json``; ``--plot FILE`` draws the drift against the level,
with the spread as error bars (needs matplotlib).

A run folder in ``OUT`` that already finished (or stopped early) is reused, and
one that was interrupted is resumed from its checkpoint (to the same weights),
so running the same command again continues a study instead of recomputing it.

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
from paracnn.tools.extras import check_installed
from paracnn.train import TrainingInterrupted, train

# NOTE: run as a script, its folder is on sys.path already; loaded by path (as the tests do), not.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness_report import (PLOT_WHAT, SEED_001_NAME, aggregate, format_report, judge,  # noqa: E402
                               write_plot)

#: the config key each kind of perturbation sets, and what turns its level into the key's value.
KEYS = {"jitter": (("data", "augment", "jitter"), 0.01), "corrupt": (("data", "label_noise"), 0.01),
        "chance": (("data", "augment", "noise"), 1.0)}
#: seed 001's early stopping: patience 2 on the validation loss. It gives no maximum of epochs.
PATIENCE, MAX_EPOCHS = 2, 20
#: the checkpoint whose weights are compared: the epoch early stopping kept.
CHECKPOINT = "best.json"


def main(argv=None):
    args = parse_args(argv)
    try:
        levels = parse_levels(args.levels)
        check_options(args)
        workers = parse_workers(args.workers)
        if args.plot:
            check_installed("matplotlib", PLOT_WHAT)  # NOTE: before hours of training, not after
        rows = run_study(args, levels, workers)
    except TrainingInterrupted as e:
        print(f"study_robustness: {e}; run the same command again to resume the study",
              file=sys.stderr)
        return e.exit_code
    except ParacnnError as e:
        print(f"study_robustness: {e}", file=sys.stderr)
        return e.exit_code
    out = Path(args.out)
    settings = aggregate(rows, args.seeds)
    verdicts = judge(settings, levels)
    report = format_report(settings, verdicts, rows)
    print(report)
    (out / "robustness.md").write_text(report + "\n", encoding="utf-8")
    about = summary(args, levels, workers, rows, settings, verdicts)
    (out / "robustness.json").write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'robustness.md'} and {out / 'robustness.json'}")
    if args.plot:
        write_plot(settings, levels, args.plot)
        print(f"wrote {args.plot}")
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/lenet.yaml", help="the config every run trains "
                   "(default configs/lenet.yaml)")
    p.add_argument("--out", required=True, help="the study folder: one run folder per seed and "
                   "run, and robustness.md / robustness.json")
    p.add_argument("--seeds", type=int, default=3, help="train every setting with train.seed 0 to "
                   "N-1 (default 3)")
    p.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="train.epochs: the most a run "
                   f"trains if early stopping does not end it (default {MAX_EPOCHS})")
    p.add_argument("--patience", type=int, default=PATIENCE, help="stop a run after this many "
                   f"epochs without a lower validation loss (default {PATIENCE}, seed 001's)")
    p.add_argument("--levels", default="5,10,15,20", help="percentages of jitter and of label "
                   "corruption, comma-separated (default 5,10,15,20)")
    p.add_argument("--chance", type=float, default=1e-6, help="sigma of the input noise of the "
                   "chance run (default 1e-6; 0 leaves the run out)")
    p.add_argument("--validation", type=float, default=0.1, help="data.validation for every run "
                   "(default 0.1; early stopping needs it above 0)")
    p.add_argument("--train-limit", type=int, help="data.train_limit: train on the first N images")
    p.add_argument("--test-limit", type=int, help="data.test_limit: test on the first N images")
    p.add_argument("--workers", help="worker processes for training (a number or auto; default: "
                   "the config's train.workers)")
    p.add_argument("--backend", choices=("local", "ray"), help="train.backend for every run")
    p.add_argument("--address", help="the Ray cluster to join with --backend ray")
    p.add_argument("--data-dir", help="the dataset folder (default: data.dir or $PARACNN_DATA_DIR)")
    p.add_argument("--plot", metavar="FILE", help="draw drift against level, with the between-seed "
                   'spread as error bars, to this PNG (needs pip install "paracnn[plot]")')
    return p.parse_args(argv)


def check_options(args):
    """The options the config's schema does not check for the study; one ParacnnError each."""
    if args.seeds < 1:
        raise ParacnnError(f"--seeds {args.seeds} trains nothing; give 1 or more (3 or more for a "
                           f"between-seed spread worth reading)")
    if args.validation == 0:
        raise ParacnnError("--validation 0 holds no images out, but every run stops early on its "
                           "validation loss; give a fraction such as --validation 0.1")
    if not 0 <= args.chance < 1:
        raise ParacnnError(f"--chance {args.chance:g} is not a noise sigma in [0, 1); the "
                           f"default 1e-6 is far below any image's detail, 0 leaves the run out")


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


def overrides(args, kind, level, seed=0):
    """The Overrides that make one run of the study; errors cite the study's option."""
    stopping = {"monitor": "val_loss", "patience": args.patience, "min_delta": 0.0}
    ovs = [Override(f"--validation {args.validation:g}", ("data", "validation"), args.validation),
           Override(f"--max-epochs {args.max_epochs}", ("train", "epochs"), args.max_epochs),
           Override(f"--patience {args.patience}", ("train", "early_stopping"), stopping),
           Override(f"--seeds {args.seeds} (seed {seed})", ("train", "seed"), seed)]
    for option, key in (("--train-limit", "train_limit"), ("--test-limit", "test_limit")):
        value = getattr(args, key)
        if value is not None:
            ovs.append(Override(f"{option} {value}", ("data", key), value))
    # NOTE: every key is set in every run, so the clean run is clean whatever the config holds.
    for each, (path, scale) in KEYS.items():
        value = level * scale if each == kind else 0.0
        label = f"--chance {value:g}" if each == "chance" else f"--levels ({each} {value:g})"
        ovs.append(Override(label, path, value))
    return ovs


def run_study(args, levels, workers):
    """Train (or reuse) every run of every seed, then measure each one's drift; the rows."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ParacnnError(f"--out {out} is a file; give a folder for the study's runs")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.seeds):
        folder = out / f"seed{seed}"
        for name, kind, level in runs(levels, args.chance):
            config = load_config(args.config, overrides(args, kind, level, seed))
            rows.append(train_one(args, folder / name, config, workers, name, kind, level, seed))
    for row in rows:
        folder = out / f"seed{row['seed']}"
        c = compare(folder / row["run"], folder / "clean", CHECKPOINT)
        row.update(test_accuracy=c.a.test_accuracy, test_loss=c.a.test_loss,
                   l2=c.overall.l2, relative_change=c.overall.relative_change,
                   cosine=c.overall.cosine, checkpoint=c.a.checkpoint)
    return rows


def train_one(args, run_dir, config, workers, name, kind, level, seed):
    """Train one run into ``run_dir``, resuming or reusing what is there; its row (no drift yet)."""
    log = Prefixed(f"seed{seed}/{name}")
    last = run_dir / "checkpoints" / "last.json"
    resume = None
    if last.is_file():
        ckpt = load_checkpoint(last)
        epochs, saved = config.data["train"]["epochs"], ckpt["config"]["train"]["epochs"]
        if saved != epochs:
            raise ParacnnError(f"{run_dir} holds a run of at most {count(saved, 'epoch')}, not "
                               f"{epochs}; give another --out, or the same --max-epochs as before "
                               f"to reuse it")
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
    best_epoch = (result["best"] or {}).get("epoch")
    kept = next((r for r in history if r.get("epoch") == best_epoch), {})
    return {"seed": seed, "run": name,
            "seed_001": f"{SEED_001_NAME[kind]}_{level:g}pct" if kind in SEED_001_NAME else name,
            "jitter": level / 100 if kind == "jitter" else 0.0,
            "label_noise": level / 100 if kind == "corrupt" else 0.0,
            "noise": level if kind == "chance" else 0.0, "how": how,
            "epochs": result["epochs"], "best_epoch": best_epoch,
            "stopped_early": result["stopped_early"],
            "val_accuracy": kept.get("val_accuracy"), "val_loss": kept.get("val_loss"),
            # NOTE: from metrics.jsonl, so a reused run reports the time it took when it trained.
            "seconds": sum(r.get("seconds", 0.0) for r in history),
            "workers": final.get("workers"), "samples_per_second": final.get("samples_per_second")}


class Prefixed:
    """A ``log`` for :func:`train` that marks each line with the run's name (a class: it pickles)."""

    def __init__(self, name):
        self.prefix = f"[{name}] "

    def __call__(self, line):
        print(self.prefix + str(line), flush=True)


def summary(args, levels, workers, rows, settings, verdicts):
    """What ``robustness.json`` holds: the settings, this process's interpreter, the rows and sums."""
    return {"config": args.config, "seeds": args.seeds, "max_epochs": args.max_epochs,
            "patience": args.patience, "checkpoint": CHECKPOINT, "levels": levels,
            "chance": args.chance, "validation": args.validation, "train_limit": args.train_limit,
            "test_limit": args.test_limit, "workers": workers, "backend": args.backend,
            "interpreter": interpreter(), "rows": rows, "settings": settings, "verdicts": verdicts}


def interpreter():
    """``CPython 3.11.9`` or ``PyPy 7.3.11 (Python 3.9.16)``."""
    pypy = getattr(sys, "pypy_version_info", None)
    if pypy is not None:
        return f"PyPy {pypy.major}.{pypy.minor}.{pypy.micro} (Python {platform.python_version()})"
    return f"{platform.python_implementation()} {platform.python_version()}"


if __name__ == "__main__":
    # NOTE: as paracnn train does: a signal outside a run (between runs) must not end the study
    # with a traceback; inside one, the run saves a checkpoint, and rerunning resumes it.
    ignore_signals_outside_the_run()
    sys.exit(main())
