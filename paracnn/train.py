"""Training and evaluation entry points: :func:`train`, :func:`evaluate` and their CLI commands.

The work is split in two modules: :mod:`paracnn.training.step` (one optimiser step
over the worker pool) and :mod:`paracnn.training.loop` (epochs, checkpoints, metrics,
signals). The weights depend only on the config: ``--workers 0, 1, 2, 4`` and
every start method reach bit-identical weights, and a run resumed from any
checkpoint (epoch end or mid-epoch) reaches the weights of an uninterrupted run.

Example::

    from paracnn.config import load_config
    result = train(load_config("configs/tiny.yaml"), workers=2, run_dir="runs/tiny")
    print(result["weights_sha256"], result["final"]["test_accuracy"])
"""

import copy
import json
import os
import sys
from pathlib import Path

from .checkpoint import load_checkpoint, resolve_checkpoint_path, resume_config, run_dir_of
from .errors import ConfigError, ParacnnError
from .layer import format_shape
from .metrics import format_report
from .runfolder import (claim_run_dir, finished_result, remove_unstarted_run, stopped_early,
                        writing_to)
from .signals import ignore_signals_outside_the_run
from .training.loop import Run, TrainingInterrupted
from .training.step import Trainer, TrainingDiverged, all_finite, as_config, weights_hash
from .workers import AUTO, choose_workers, evaluation_warnings, resolve_workers

__all__ = ["train", "evaluate", "train_from_cli", "evaluate_from_cli", "Trainer", "Run",
           "TrainingInterrupted", "TrainingDiverged", "all_finite", "weights_hash"]


def train(config=None, *, workers=None, run_dir=None, resume=None, start_method=None,
          data_dir=None, progress=None, max_steps=None, log=print, overwrite=False, quiet=False,
          backend=None, address=None):
    """Train ``config`` and return a result dict (see :meth:`paracnn.training.loop.Run.result`).

    Args:
        config: a Config or config dict; may be None with ``resume`` (the
            checkpoint's config is used).
        workers: worker processes, or ``auto`` (None: ``train.workers``); see
            :mod:`paracnn.workers`.
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
        backend, address: ``local`` or ``ray``, and the Ray cluster to join; None for
            ``train.backend`` and ``train.ray_address`` (a resumed run may change both).

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
    config = as_config(config)
    epochs = config.data["train"]["epochs"]
    if ckpt is not None and ((ckpt["epoch"] >= epochs and not ckpt.get("step_in_epoch"))
                             or stopped_early(ckpt, config)):
        return finished_result(ckpt, config, Path(run_dir) if run_dir else resumed_dir, log)
    tc = dict(config.data["train"], backend=backend or config.data["train"].get("backend", "local"))
    workers = choose_workers(workers, tc, log)
    if workers and tc["backend"] == "ray":
        from .parallel.ray_actor import import_ray
        import_ray()  # NOTE: a missing extra is refused before the run folder is claimed
    created = run_dir is None or not os.path.lexists(run_dir)
    with writing_to(run_dir or "runs"):
        run_dir = claim_run_dir(run_dir, config, resuming_from=resumed_dir, overwrite=overwrite,
                                log=log)
    run = Run(config, run_dir, ckpt, workers=workers, start_method=start_method, data_dir=data_dir,
              progress=progress, max_steps=max_steps, log=log, quiet=quiet, backend=backend,
              address=address)
    try:
        return run.execute()
    except BaseException:
        if created and run.steps_taken() == 0:
            remove_unstarted_run(run_dir)  # NOTE: a run that never stepped leaves no folder behind
        raise


# -- evaluation -----------------------------------------------------------------------------

def evaluate(checkpoint, *, overrides=(), workers=None, start_method=None, data_dir=None, log=print,
             warn=None, backend=None, address=None):
    """Evaluate a checkpoint on its validation (if any) and test sets.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``checkpoints/last.json``).
        overrides: ``KEY=VALUE`` strings for the checkpoint's config, as ``--set`` takes them:
            ``data.test_limit=1000``, or ``data.dataset=fashion-mnist`` for another dataset of
            the same image shape and classes. The model itself comes from the checkpoint.
        workers: worker processes; None or ``auto`` for min(usable CPUs, micro-batches per
            step), whatever the run trained with; 0 evaluates in-process.
        start_method, data_dir: as for :func:`train`.
        log: where lines go; ``warn``: where the worker-count warnings go (default ``log``).
        backend, address: where to evaluate; None evaluates locally unless ``overrides`` set
            ``train.backend`` (a checkpoint trained on Ray does not need its cluster again).

    Returns ``{"checkpoint", "epoch", "step", "weights_sha256", "val"?, "test"}``,
    each split a :func:`~paracnn.metrics.classification_report`.
    """
    from .config import Override

    path = resolve_checkpoint_path(checkpoint)
    ckpt = load_checkpoint(path)
    if workers is not None:
        # NOTE: checked by the schema like train's flag, so a bad count cites --workers.
        overrides = list(overrides) + [Override(f"--workers {workers}", ("train", "workers"), workers)]
    config = evaluation_config(ckpt["config"], str(path), overrides)
    tc = config.data["train"]
    workers = resolve_workers(AUTO if workers is None else tc["workers"], tc)
    if backend is None and not _overrides_key(overrides, ("train", "backend")):
        # NOTE: where the run trained says nothing of where to evaluate (its cluster may be gone).
        backend = "local"
    with Trainer(config, workers=workers, start_method=start_method, data_dir=data_dir,
                 log=log, backend=backend, address=address) as trainer:
        sizes = {split: len(trainer.engine.datasets[split]) for split in ("val", "test")
                 if split in trainer.splits}
        for line in evaluation_warnings(workers, sizes, tc.get("eval_batch"),
                                        on_ray=trainer.backend is not None):
            (warn or log)(f"warning: {line}")
        trainer.load_state(ckpt)
        out = {"checkpoint": str(path), "epoch": ckpt["epoch"], "step": ckpt["step"],
               "weights_sha256": weights_hash(trainer.weights)}
        for split in sizes:
            out[split] = trainer.evaluate(split)
    return out


def evaluation_config(saved, name, overrides=()):
    """The checkpoint's config dict ``saved`` with ``overrides`` applied, for :func:`evaluate`.

    Only ``data.*`` and ``train.*`` keys may change, and the data must keep the
    image shape and classes the model was trained on; anything else is one
    ConfigError that names the ``--set``.
    """
    from .config import apply_override, config_from_dict, parse_override
    from .config.schema import dataset_info, validate_data

    trained = config_from_dict(saved, name=name)
    overrides = [parse_override(o) if isinstance(o, str) else o for o in overrides]
    for ov in overrides:
        if ov.path[:1] == ("model",):
            raise ConfigError("the model comes from the checkpoint; evaluate can change data.* "
                              "and train.* keys only", where=ov.label)
    try:
        config = config_from_dict(saved, name=name, overrides=overrides)
        fits, error = (config.image_shape, config.num_classes), None
    except ConfigError as e:
        if tuple(e.key or ()) != ("model", "input_shape"):
            raise
        # NOTE: schema.py checks the data against model.input_shape with advice for a config
        # author ("use input_shape: ..."); here the model is fixed, so the data must change.
        raw = copy.deepcopy(saved)
        for ov in overrides:
            apply_override(raw, ov)
        fits, error = dataset_info(validate_data(raw["data"])), e
    want = (trained.image_shape, trained.num_classes)
    if fits != want:
        labels = ", ".join(ov.label for ov in overrides if ov.path[:1] == ("data",)) or name
        raise ConfigError(f"the model in {name} takes {format_shape(want[0])} images in {want[1]} "
                          f"classes, but this data has {format_shape(fits[0])} images in {fits[1]} "
                          f"classes; evaluate on data of the same shape and classes (mnist and "
                          f"fashion-mnist fit each other)", where=labels)
    if error is not None:
        raise error
    return config


def train_from_cli(args, config):
    """``paracnn train``: returns the exit status (130/143 after a signal)."""
    ignore_signals_outside_the_run()
    try:
        result = train(config, workers=getattr(args, "workers", None),
                       run_dir=getattr(args, "run_dir", None), resume=getattr(args, "resume", None),
                       start_method=getattr(args, "start_method", None),
                       data_dir=getattr(args, "data_dir", None),
                       progress=False if getattr(args, "no_progress", False) else None,
                       overwrite=getattr(args, "overwrite", False), quiet=getattr(args, "quiet", False),
                       backend=getattr(args, "backend", None), address=getattr(args, "address", None))
    except TrainingInterrupted as e:
        print(f"paracnn: {e}", file=sys.stderr)
        return e.exit_code
    print(f"weights sha256 {result['weights_sha256']}; run folder {result['run_dir']}")
    return 0


def _overrides_key(overrides, path):
    """True if one of ``overrides`` (``KEY=VALUE`` strings or parsed overrides) sets ``path``."""
    from .config import parse_override

    return any(tuple((parse_override(o) if isinstance(o, str) else o).path) == path
               for o in overrides)


def _silent(line):
    pass


def _stderr(line):
    print(line, file=sys.stderr)


def evaluate_from_cli(args):
    """``paracnn evaluate CHECKPOINT [--set KEY=VALUE] [--json]``."""
    quiet = getattr(args, "json", False)
    result = evaluate(args.checkpoint, overrides=getattr(args, "overrides", ()),
                      workers=getattr(args, "workers", None),
                      start_method=getattr(args, "start_method", None),
                      data_dir=getattr(args, "data_dir", None),
                      backend=getattr(args, "backend", None), address=getattr(args, "address", None),
                      log=_silent if quiet else print, warn=_stderr if quiet else print)
    if quiet:
        print(json.dumps(result, indent=1))
        return 0
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']}, step {result['step']})")
    for split in ("val", "test"):
        if split in result:
            print(format_report(result[split], f"{split} set"))
    return 0
