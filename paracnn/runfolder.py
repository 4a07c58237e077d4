"""Run folders: never overwritten, finished runs left alone, write errors said plainly.

:func:`claim_run_dir` is called before a run writes anything. A folder
holding a run (its ``config.yaml``, metrics or checkpoints) is refused with a
:class:`RunFolderTaken` naming what is there and the two ways forward, unless
the run resumes it or ``overwrite`` moves it to ``R.old-<YYYYmmdd-HHMMSS>``
(nothing is ever deleted). Resuming a run that already trained its epochs
(:func:`finished_result`) writes nothing. :class:`RunFiles` writes a run's
files; :func:`writing_to` turns a failed write in the folder into one
:class:`~paracnn.errors.RunError` line.
"""

import contextlib
import errno
import json
import os
import time
from pathlib import Path

from .checkpoint import check_fits, save_checkpoint
from .files import write_atomic
from .training.early_stopping import BestEpoch
from .errors import CheckpointError, RunError
from .monitor import MetricsWriter, StepsWriter
from .training.step import weights_hash

#: what makes a folder a run folder, in the order the refusal names them.
RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "steps.jsonl", "eval.json", "checkpoints")


class RunFolderTaken(RunError):
    """``--run-dir`` names a folder that already holds a run; exit 2."""


def run_contents(folder):
    """The run files in ``folder`` (names; ``checkpoints/last.json`` style for checkpoints)."""
    folder = Path(folder)
    found = []
    for name in RUN_FILES:
        path = folder / name
        if name == "checkpoints" and path.is_dir():
            found += [f"checkpoints/{p.name}" for p in sorted(path.glob("*.json"))]
        elif path.is_file():
            found.append(name)
    return found


def claim_run_dir(run_dir, config, *, resuming_from=None, overwrite=False, log=print):
    """The folder a run may write to, created if needed.

    Args:
        run_dir: the folder asked for, or None for a new default one.
        config: the run's Config (its file name names a default folder).
        resuming_from: the run folder of the checkpoint being resumed, or None.
        overwrite: move a folder that holds another run aside instead of refusing.
        log: where the "moved aside" line goes.

    Raises:
        RunFolderTaken: ``run_dir`` holds another run and ``overwrite`` is off.
    """
    if run_dir is None:
        return default_run_dir(config)
    run_dir = Path(run_dir)
    same = resuming_from is not None and _same(run_dir, resuming_from)
    if same and overwrite:
        raise RunError(f"--overwrite cannot be used with --resume {run_dir}: the run would move "
                       f"away from under itself; resume without --overwrite, or start a new run "
                       f"with --run-dir")
    found = [] if same else run_contents(run_dir)
    if found:
        if not overwrite:
            shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
            aside = f"--overwrite (which moves the old folder to {run_dir.resolve().name}.old-<time>)"
            if "checkpoints/last.json" not in found:
                raise RunFolderTaken(f"run folder {run_dir} already holds a run ({shown}) that "
                                     f"saved no checkpoint to resume from; start afresh with {aside}, "
                                     f"or choose another --run-dir")
            raise RunFolderTaken(f"run folder {run_dir} already holds a run ({shown}); continue it "
                                 f"with --resume {run_dir}, or start afresh with {aside}")
        if Path.cwd().resolve().is_relative_to(run_dir.resolve()):
            raise RunError(f"--overwrite cannot move {run_dir} aside: it is (or holds) the current "
                           f"folder, which this process works in; pass another --run-dir, or run "
                           f"from outside {run_dir}")
        moved = move_aside(run_dir)
        log(f"moved the earlier run {run_dir} to {moved}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def remove_unstarted_run(run_dir):
    """Remove the files a run writes before its first step, then ``run_dir`` itself if that empties it.

    Only names a run writes are removed (never ``rmtree``): anything else found there stays,
    and so does the folder.
    """
    run_dir = Path(run_dir)
    for name in RUN_FILES + ("label_noise.json",):
        path = run_dir / name
        with contextlib.suppress(OSError):
            if name == "checkpoints":
                path.rmdir()
            else:
                path.unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def move_aside(folder):
    """Rename ``folder`` to ``<folder>.old-<YYYYmmdd-HHMMSS>`` (``-2``... if taken); return the new path."""
    folder = Path(folder)
    base = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    # NOTE: create the target first (atomically, never reused), then rename onto the empty folder.
    target = create_new_folder(base)
    os.replace(folder, target)
    return target


def _same(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def finished_result(ckpt, config, run_dir, log):
    """Resuming a run that already trained its epochs, or stopped early: say so, write nothing.

    The checkpoint is still checked against the config's model, as a resume would.
    Returns the result of the run, as :func:`run_result` gives it.
    """
    check_fits(ckpt, config.build_model())
    done = ckpt["epoch"]
    best = stopped_early(ckpt, config)
    if best is not None:
        log(f"run {run_dir} stopped early after epoch {done}: {best.metric} last improved at epoch "
            f"{best.record['epoch']}; raise train.early_stopping.patience with --set "
            f"train.early_stopping.patience={best.waited + 1} (or more) to train on")
    else:
        log(f"run {run_dir} already finished its {count(done, 'epoch')}; raise train.epochs with "
            f"--set train.epochs={done + 1} (or more) to train longer")
    history = MetricsWriter(run_dir, with_val=False).read()
    return run_result(run_dir, ckpt["weights"], epochs=done, steps=ckpt["step"], stopped=False,
                      checkpoint=ckpt["path"], history=history, eval={}, best=ckpt.get("best"),
                      final=history[-1] if history else ckpt.get("metrics"), finished_before=True,
                      stopped_early=best is not None)


def stopped_early(ckpt, config):
    """The :class:`~paracnn.training.early_stopping.BestEpoch` of an epoch-end ``ckpt`` whose run
    ``config``'s early stopping ends, or None (it would train on)."""
    if ckpt.get("step_in_epoch"):
        return None
    data, tc = config.data["data"], config.data["train"]
    best = BestEpoch(tc, data["validation"] > 0, ckpt.get("best"), epochs_done=ckpt["epoch"])
    return best if best.should_stop else None


def run_result(run_dir, weights, *, epochs, steps, stopped, checkpoint, history, eval, best,
               step_in_epoch=0, final=None, workers=None, micro_batch=None, finished_before=False,
               stopped_early=False):
    """The dict :func:`paracnn.train.train` returns: where the run is, its weights and its records.

    ``final`` defaults to the last of ``history``; ``best`` is the best.json record (or None).
    """
    return {"run_dir": str(run_dir), "weights_sha256": weights_hash(weights),
            "weights": [float(w) for w in weights], "epochs": epochs,
            "step_in_epoch": step_in_epoch, "steps": steps, "stopped": stopped,
            "checkpoint": str(checkpoint), "history": history,
            "final": final if final is not None else (history[-1] if history else None),
            "eval": eval, "best": best, "num_params": len(weights), "workers": workers,
            "micro_batch": micro_batch, "finished_before": finished_before,
            "stopped_early": stopped_early}


class RunFiles:
    """What a run writes in its folder, each write atomic or an append, each failure one line.

    ``config.yaml`` (and ``label_noise.json``) at the start, ``steps.jsonl``
    rows, ``metrics.jsonl``/``metrics.csv`` records and events, ``eval.json``,
    and the checkpoints in ``checkpoints/``.
    """

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.metrics = MetricsWriter(self.dir, with_val=False)
        self.steps = StepsWriter(self.dir)

    def create(self, config, label_noise, with_val):
        """Write the run's config (and the labels that noise changed); metrics with ``val_*`` or not."""
        with writing_to(self.dir):
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "checkpoints").mkdir(exist_ok=True)
            write_atomic(self.dir / "config.yaml", config.to_yaml())
            if label_noise is not None:
                write_atomic(self.dir / "label_noise.json", label_noise.to_json())
        self.metrics = MetricsWriter(self.dir, with_val)

    def resume(self, epoch, step):
        """Drop what came after ``epoch`` and global ``step``; return the epoch records kept."""
        with writing_to(self.dir):
            self.steps.truncate(step)
            return self.metrics.truncate(epoch)

    def write_steps_row(self, row):
        with writing_to(self.dir):
            self.steps.write(row)

    def write_epoch(self, record):
        with writing_to(self.dir):
            self.metrics.write(record)

    def write_event(self, event):
        with writing_to(self.dir):
            self.metrics.write_event(event)

    def write_eval(self, out):
        with writing_to(self.dir):
            write_atomic(self.dir / "eval.json", json.dumps(out, indent=1))

    def checkpoint(self, name, **state):
        """Save ``checkpoints/<name>`` (see :func:`~paracnn.checkpoint.save_checkpoint`); its path."""
        path = self.dir / "checkpoints" / name
        try:
            return save_checkpoint(path, **state)
        except OSError as e:
            # NOTE: the write is atomic, so the checkpoint already there is intact.
            raise CheckpointError(f"cannot save checkpoint {path}: {e.strerror or e}; the previous "
                                  f"checkpoint there is unchanged; {write_advice(e)}, then resume "
                                  f"with --resume {self.dir}") from None


@contextlib.contextmanager
def writing_to(run_dir):
    """A failed write in the run folder (permissions, a full disk) becomes one clear RunError."""
    try:
        yield
    except OSError as e:
        name = f" ({e.filename})" if e.filename else ""
        raise RunError(f"cannot write to the run folder {run_dir}: {e.strerror or e}{name}; "
                       f"{write_advice(e)}, or choose another folder with --run-dir") from None


def write_advice(error):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    return "check that the folder can be created and written (permissions, a file in the way)"


def count(n, noun):
    """``1 epoch``, ``2 epochs``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def default_run_dir(config, root="runs"):
    """Create and return a new ``runs/<config stem>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... if taken).

    The folder is created here, with ``mkdir`` that fails if it exists, so two
    runs started in the same second (even in two processes) never share one.
    """
    path = str(getattr(config, "path", "") or "")
    stem = Path(path).stem if path and not path.startswith("<") else "run"
    return create_new_folder(Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def create_new_folder(base):
    """Create ``base``, or ``base-2``, ``base-3``... whichever is free first; return it."""
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
