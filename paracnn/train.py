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

from .checkpoint import load_checkpoint, resolve_checkpoint_path, resume_config, run_dir_of
from .errors import ParacnnError
from .metrics import format_report
from .run import Run, TrainingInterrupted
from .runfolder import claim_run_dir, finished_result, writing_to
from .signals import ignore_signals_outside_the_run
from .trainer import Trainer, TrainingDiverged, _as_config, all_finite, weights_hash

__all__ = ["train", "evaluate", "train_from_cli", "evaluate_from_cli", "Trainer", "Run",
           "TrainingInterrupted", "TrainingDiverged", "all_finite", "weights_hash"]


def train(config=None, *, workers=None, run_dir=None, resume=None, start_method=None,
          data_dir=None, progress=None, max_steps=None, log=print, overwrite=False, quiet=False):
    """Train ``config`` and return a result dict (see :meth:`paracnn.run.Run.result`).

    Args:
        config: a Config or config dict; may be None with ``resume`` (the
            checkpoint's config is used).
        workers: worker processes (None: ``train.workers``).
        run_dir: the run folder (default: a new ``runs/<config stem>-<YYYYmmdd-HHMMSS>``).
            A folder that already holds a run is refused (RunFolderTaken), unless
            it is the one resumed, or ``overwrite`` moves it aside.
        resume: a run folder or checkpoint file to continue from. A run that
            already trained ``train.epochs`` epochs is left as it is: a line says
            so and the result has ``finished_before: True``.
        start_method: fork, spawn, forkserver or None.
        data_dir: the dataset folder, overriding ``data.dir``.
        progress: True for a progress bar, False for no progress; None for a bar
            on a terminal and progress lines otherwise.
        max_steps: stop (with a checkpoint, as on Ctrl-C but without raising)
            once the run has taken this many optimiser steps in total.
        log: where lines go (``print`` by default).
        overwrite: move a ``run_dir`` holding another run to ``run_dir.old-<time>``.
        quiet: leave out each epoch's systems line (throughput, time split, memory).

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM, after saving ``last.json``.
        RunFolderTaken: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given.
    """
    ckpt = resumed_dir = None
    if resume is not None:
        ckpt = load_checkpoint(resolve_checkpoint_path(resume))
        config = resume_config(config, ckpt)
        resumed_dir = run_dir_of(ckpt["path"])
        run_dir = run_dir or resumed_dir
    elif config is None:
        raise ParacnnError("train() needs a config or a checkpoint to resume")
    config = _as_config(config)
    epochs = config.data["train"]["epochs"]
    if ckpt is not None and ckpt["epoch"] >= epochs and not ckpt.get("step_in_epoch"):
        return finished_result(ckpt, config, Path(run_dir) if run_dir else resumed_dir, log)
    with writing_to(run_dir or "runs"):
        run_dir = claim_run_dir(run_dir, config, resuming_from=resumed_dir, overwrite=overwrite,
                                log=log)
    run = Run(config, run_dir, ckpt, workers=workers, start_method=start_method, data_dir=data_dir,
              progress=progress, max_steps=max_steps, log=log, quiet=quiet)
    return run.execute()


# -- evaluation -----------------------------------------------------------------------------

def evaluate(checkpoint, *, workers=None, start_method=None, data_dir=None, log=print):
    """Evaluate a checkpoint on its validation (if any) and test sets.

    Returns ``{"checkpoint", "epoch", "step", "weights_sha256", "val"?, "test"}``,
    each split a :func:`~paracnn.metrics.classification_report`.
    """
    from .config import config_from_dict

    path = resolve_checkpoint_path(checkpoint)
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"], name=str(path))
    with Trainer(config, workers=workers, start_method=start_method, data_dir=data_dir,
                 log=log) as trainer:
        trainer.load_state(ckpt)
        out = {"checkpoint": str(path), "epoch": ckpt["epoch"], "step": ckpt["step"],
               "weights_sha256": weights_hash(trainer.weights)}
        for split in ("val", "test"):
            if split in trainer.splits:
                out[split] = trainer.evaluate(split)
    return out


def train_from_cli(args, config):
    """``paracnn train``: returns the exit status (130/143 after a signal)."""
    ignore_signals_outside_the_run()
    try:
        result = train(config, workers=getattr(args, "workers", None),
                       run_dir=getattr(args, "run_dir", None), resume=getattr(args, "resume", None),
                       start_method=getattr(args, "start_method", None),
                       data_dir=getattr(args, "data_dir", None),
                       progress=False if getattr(args, "no_progress", False) else None,
                       overwrite=getattr(args, "overwrite", False), quiet=getattr(args, "quiet", False))
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
                      log=_silent if quiet else print)
    if quiet:
        print(json.dumps(result, indent=1))
        return 0
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']}, step {result['step']})")
    for split in ("val", "test"):
        if split in result:
            print(format_report(result[split], f"{split} set"))
    return 0
