"""Training and evaluation entry points: :func:`train`, :func:`evaluate` and their CLI commands.

The work is split in two modules: :mod:`paracnn.trainer` (one optimiser step
over the worker pool) and :mod:`paracnn.run` (epochs, checkpoints, metrics,
signals). The weights depend only on the config: ``--workers 0, 1, 2, 4`` and
every start method reach bit-identical weights, and a run resumed from any
checkpoint (epoch end or mid-epoch) reaches the weights of an uninterrupted run.

Example::

    from paracnn.config import load_config
    result = train(load_config("configs/tiny.yaml"), workers=2, run_dir="runs/tiny")
    print(result["weights_sha256"], result["final"]["test_accuracy"])
"""

import json
import sys
from pathlib import Path

from .checkpoint import (default_run_dir, load_checkpoint, resolve_checkpoint_path, resume_config,
                         run_dir_of)
from .errors import ParacnnError
from .metrics import format_report
from .run import Run, TrainingInterrupted
from .trainer import Trainer, TrainingDiverged, _as_config, all_finite, weights_hash

__all__ = ["train", "evaluate", "train_from_cli", "evaluate_from_cli", "Trainer", "Run",
           "TrainingInterrupted", "TrainingDiverged", "all_finite", "weights_hash"]


def train(config=None, *, workers=None, run_dir=None, resume=None, start_method=None,
          data_dir=None, progress=None, max_steps=None, log=print):
    """Train ``config`` and return a result dict (see :meth:`paracnn.run.Run.result`).

    Args:
        config: a Config or config dict; may be None with ``resume`` (the
            checkpoint's config is used).
        workers: worker processes (None: ``train.workers``).
        run_dir: the run folder (default ``runs/<config stem>-<YYYYmmdd-HHMMSS>``).
        resume: a run folder or checkpoint file to continue from.
        start_method: fork, spawn, forkserver or None.
        data_dir: the dataset folder, overriding ``data.dir``.
        progress: True/False for the progress bar; None shows it on a terminal.
        max_steps: stop (with a checkpoint, as on Ctrl-C but without raising)
            once the run has taken this many optimiser steps in total.
        log: where lines go (``print`` by default).

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM, after saving ``last.json``.
    """
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resolve_checkpoint_path(resume))
        config = resume_config(config, ckpt)
        run_dir = run_dir or run_dir_of(ckpt["path"])
    elif config is None:
        raise ParacnnError("train() needs a config or a checkpoint to resume")
    config = _as_config(config)
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    run = Run(config, run_dir, ckpt, workers, start_method, data_dir, progress, max_steps, log)
    return run.execute()


# -- evaluation -----------------------------------------------------------------------------

def evaluate(checkpoint, *, workers=None, start_method=None, data_dir=None, log=print, backend=None,
             address=None):
    """Evaluate a checkpoint on its validation (if any) and test sets.

    Returns ``{"checkpoint", "epoch", "step", "weights_sha256", "val"?, "test"}``,
    each split a :func:`~paracnn.metrics.classification_report`.
    """
    from .config import config_from_dict

    path = resolve_checkpoint_path(checkpoint)
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"], name=str(path))
    with Trainer(config, workers=workers, start_method=start_method, data_dir=data_dir,
                 log=log, backend=backend, address=address) as trainer:
        trainer.load_state(ckpt)
        out = {"checkpoint": str(path), "epoch": ckpt["epoch"], "step": ckpt["step"],
               "weights_sha256": weights_hash(trainer.weights)}
        for split in ("val", "test"):
            if split in trainer.splits:
                out[split] = trainer.evaluate(split)
    return out


def train_from_cli(args, config):
    """``paracnn train``: returns the exit status (130/143 after a signal)."""
    try:
        result = train(config, workers=getattr(args, "workers", None),
                       run_dir=getattr(args, "run_dir", None), resume=getattr(args, "resume", None),
                       start_method=getattr(args, "start_method", None),
                       data_dir=getattr(args, "data_dir", None),
                       progress=False if getattr(args, "no_progress", False) else None)
    except TrainingInterrupted as e:
        print(f"paracnn: {e}", file=sys.stderr)
        return e.exit_code
    print(f"weights sha256 {result['weights_sha256']}; run folder {result['run_dir']}")
    return 0


def _silent(line):
    pass


def evaluate_from_cli(args):
    """``paracnn evaluate --checkpoint FILE [--json]``."""
    quiet = getattr(args, "json", False)
    result = evaluate(args.checkpoint, workers=getattr(args, "workers", None),
                      start_method=getattr(args, "start_method", None),
                      data_dir=getattr(args, "data_dir", None),
                      backend=getattr(args, "backend", None), address=getattr(args, "address", None),
                      log=_silent if quiet else print)
    if quiet:
        print(json.dumps(result, indent=1))
        return 0
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']}, step {result['step']})")
    for split in ("val", "test"):
        if split in result:
            print(format_report(result[split], f"{split} set"))
    return 0
