"""The training loop: epochs, steps, evaluation, checkpoints, metrics, signals.

A step takes the next ``batch_size`` indices of the epoch order (a function
of ``(seed, epoch)``), asks the :class:`~paracnn.parallel.Engine` for the mean
gradient, optionally clips it, and applies the optimiser in the parent. The
weights therefore depend only on the config: ``--workers 0, 1, 2, 4`` and
every start method reach bit-identical weights, and a run resumed from any
checkpoint (epoch end or mid-epoch) reaches the weights of an uninterrupted run.

Train loss and accuracy of an epoch average the steps' forward passes (with
dropout, at each step's weights), as Keras reports them.

Example::

    from paracnn.config import load_config
    result = train(load_config("configs/tiny.yaml"), workers=2, run_dir="runs/tiny")
    print(result["weights_sha256"], result["final"]["test_accuracy"])
"""

import contextlib
import errno
import hashlib
import json
import math
import signal
import sys
import threading
import time
from array import array
from pathlib import Path

from .checkpoint import (atomic_write_text, default_run_dir, load_checkpoint, resolve_checkpoint_path,
                         resume_config, run_dir_of, save_checkpoint)
from .errors import CheckpointError, ParacnnError, RunError, TaskError
from .metrics import classification_report, format_report
from .monitor import MetricsWriter, ResourceMonitor, format_epoch, progress_bar
from .optim import Schedule, clip_grad_norm, make_optimizer
from .parallel import Engine, WorkerError

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingInterrupted(ParacnnError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; exit 130 or 143."""

    def __init__(self, message, exit_code, checkpoint=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.checkpoint = checkpoint


class TrainingDiverged(ParacnnError):
    """The loss, the gradient or the weights became NaN or infinite; exit 1."""

    exit_code = 1


def all_finite(values):
    """True if no value is NaN or infinite: one C-level sum, and a full scan only if that overflows."""
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


def weights_hash(weights):
    """SHA-256 of the float64 bytes of ``weights``: equal hashes mean bit-identical weights."""
    return hashlib.sha256(array("d", weights).tobytes()).hexdigest()


class Trainer:
    """A model, its optimiser and schedule, its datasets and an :class:`Engine`.

    The unit of work is :meth:`step`; :func:`train` adds epochs, evaluation,
    checkpoints and metrics around it (and ``paracnn profile`` can time steps).

    Args:
        config: a :class:`~paracnn.config.Config` (or its ``.data`` dict).
        workers: worker processes (None: ``train.workers``); 0 runs in-process.
        start_method: None for ``train.start_method`` or the platform default.
        data_dir: overrides ``data.dir``.
        log: called with human-readable lines.
    """

    def __init__(self, config, *, workers=None, start_method=None, data_dir=None, log=print):
        from .data import load_datasets

        self.config = _as_config(config)
        cfg = self.config.data
        tc = self.train_cfg = cfg["train"]
        self.seed = tc["seed"]
        self.workers = tc["workers"] if workers is None else workers
        self.log = log
        self.model = self.config.build_model(self.seed)
        self.weights = list(self.model.get_weights())
        self.optimizer = make_optimizer(tc)
        self.batch_size = tc["batch_size"]
        self.clip = tc.get("clip_grad_norm")
        sets = load_datasets(cfg["data"], seed=self.seed, data_dir=data_dir)
        self.class_names, self.num_classes = sets.classes, sets.num_classes
        splits = {"train": sets.train, "test": sets.test}
        if sets.val is not None:
            splits["val"] = sets.val
        self.train_size = len(sets.train)
        self.steps_per_epoch = math.ceil(self.train_size / self.batch_size)
        self.schedule = Schedule(tc["schedule"], tc["lr"], tc["epochs"] * self.steps_per_epoch)
        self.global_step = 0
        del sets  # NOTE: the Engine keeps shared-memory copies; the originals can be freed.
        self.engine = Engine(self.model, splits, workers=self.workers, batch_size=self.batch_size,
                             micro_batch=tc.get("micro_batch"), eval_batch=tc.get("eval_batch"),
                             seed=self.seed, start_method=start_method or tc.get("start_method"),
                             log=log, max_failures=tc["max_worker_failures"],
                             task_timeout=tc["worker_timeout"] or None)
        self.start_method = self.engine.pool.start_method if self.engine.pool else None

    @property
    def splits(self):
        return list(self.engine.datasets)

    def batches(self, epoch):
        """The mini-batches (lists of sample indices) of ``epoch``, in order."""
        from .data import epoch_order

        order = epoch_order(self.train_size, self.seed, epoch)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def step(self, indices, epoch):
        """One optimiser step on ``indices``; returns its loss, accuracy counts and timings."""
        start = time.perf_counter()
        broadcast = self.engine.set_weights(self.weights)
        g = self.engine.gradient(indices, epoch)
        t = time.perf_counter()
        grad = g["grad"]
        if not math.isfinite(g["loss_sum"]):
            raise TrainingDiverged(f"the loss became {g['loss_sum']}")
        if not all_finite(grad):
            raise TrainingDiverged("the gradient holds NaN or infinite values")
        if self.clip:
            grad, _ = clip_grad_norm(grad, self.clip)
        lr = self.schedule(epoch, self.global_step)
        weights = self.optimizer.step(self.weights, grad, lr)
        if not all_finite(weights):
            raise TrainingDiverged("the update made some weights NaN or infinite")
        self.weights = weights
        self.global_step += 1
        compute = g["busy"] / max(1, self.workers)
        return {"loss_sum": g["loss_sum"], "correct": g["correct"], "samples": g["samples"],
                "lr": lr, "broadcast": broadcast, "compute": compute, "wait": g["wall"] - compute,
                "reduce_update": g["reduce"] + time.perf_counter() - t,
                "seconds": time.perf_counter() - start}

    def evaluate(self, split):
        """A :func:`~paracnn.metrics.classification_report` of ``split`` at the current weights."""
        self.engine.set_weights(self.weights)
        loss_sum, preds, _ = self.engine.evaluate(split)
        labels = self.engine.datasets[split].labels_list()
        return classification_report(labels, preds, self.num_classes, loss_sum, self.class_names)

    def load_state(self, ckpt):
        """Take weights, optimiser state and step count from a loaded checkpoint."""
        if len(ckpt["weights"]) != len(self.weights):
            raise CheckpointError(f"checkpoint {ckpt.get('path', '')} holds {len(ckpt['weights'])} "
                                  f"weights but the model has {len(self.weights)}; it was saved "
                                  f"from a different model")
        self.weights = [float(w) for w in ckpt["weights"]]
        self.optimizer.load_state_dict(ckpt.get("optimizer") or {}, len(self.weights))
        self.global_step = ckpt["step"]

    def close(self):
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the run ----------------------------------------------------------------------

def train(config=None, *, workers=None, run_dir=None, resume=None, start_method=None,
          data_dir=None, progress=None, max_steps=None, log=print):
    """Train ``config`` and return a result dict (see :class:`_Run.result`).

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
    run = _Run(config, run_dir, ckpt, workers, start_method, data_dir, progress, max_steps, log)
    return run.execute()


class _Run:
    """One call of :func:`train`: the loop over epochs and steps with its bookkeeping."""

    def __init__(self, config, run_dir, ckpt, workers, start_method, data_dir, progress, max_steps, log):
        self.config, self.run_dir, self.ckpt = config, run_dir, ckpt
        self.options = dict(workers=workers, start_method=start_method, data_dir=data_dir, log=log)
        self.progress, self.max_steps, self.log = progress, max_steps, log
        self.stop_signal = None
        self.bar = None
        self.history, self.reports = [], {}

    # -- signals --------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self.stop_signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
        # NOTE: no printing here: a handler that writes can re-enter a print in progress.
        self.stop_signal = signum

    def say(self, line):
        if self.bar is not None:
            self.bar.write(line)
        else:
            self.log(line)

    def execute(self):
        installed = {}
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNAL_EXIT:
                installed[sig] = signal.signal(sig, self._on_signal)
        try:
            self.options["log"] = self.say
            with Trainer(self.config, **self.options) as trainer:
                self.trainer = trainer
                return self._loop()
        finally:
            if self.bar is not None:
                self.bar.close()
            for sig, old in installed.items():
                signal.signal(sig, old)

    # -- state -----------------------------------------------------------------------
    def _start(self):
        t = self.trainer
        with _writing(self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "checkpoints").mkdir(exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", self.config.to_yaml())
        self.metrics = MetricsWriter(self.run_dir, "val" in t.splits)
        self.epoch, self.step_in_epoch, self.best = 0, 0, None
        self.acc = _fresh_progress()
        if self.ckpt is None:
            with _writing(self.run_dir):
                for name in ("metrics.jsonl", "metrics.csv"):
                    (self.run_dir / name).unlink(missing_ok=True)
            return
        c = self.ckpt
        t.load_state(c)
        self.epoch, self.step_in_epoch = c["epoch"], c.get("step_in_epoch", 0)
        self.acc = {**self.acc, **(c.get("progress") or {})}
        self.best = c.get("best")
        with _writing(self.run_dir):
            self.history = self.metrics.truncate(self.epoch)
        self.log(f"resuming from {c['path']}: epoch {self.epoch + 1}, step {self.step_in_epoch} "
                 f"(global step {c['step']})")

    def _checkpoint(self, name="last.json"):
        t = self.trainer
        path = self.run_dir / "checkpoints" / name
        try:
            return save_checkpoint(
                path, config=self.config.data, weights=t.weights,
                optimizer=t.optimizer.state_dict(), epoch=self.epoch, step=t.global_step,
                step_in_epoch=self.step_in_epoch, metrics=self.history[-1] if self.history else None,
                progress=self.acc if self.step_in_epoch else None, best=self.best)
        except OSError as e:
            # NOTE: the write is atomic, so the checkpoint already there is intact.
            raise CheckpointError(f"cannot save checkpoint {path}: {e.strerror or e}; the previous "
                                  f"checkpoint there is unchanged; {_write_advice(e)}, then resume "
                                  f"with --resume {self.run_dir}") from None

    # -- the loop ----------------------------------------------------------------------
    def _loop(self):
        t = self.trainer
        self._start()
        epochs = t.train_cfg["epochs"]
        self.log(f"training {t.model.num_params():,} parameters on {t.train_size:,} samples: "
                 f"{epochs} epochs of {t.steps_per_epoch} steps, batch {t.batch_size}, micro-batch "
                 f"{t.engine.micro_batch}, workers {t.workers}"
                 + (f" ({t.start_method})" if t.start_method else "") + f"; run {self.run_dir}")
        monitor = ResourceMonitor(t.engine.worker_pids)
        while self.epoch < epochs:
            batches = t.batches(self.epoch)
            monitor.start()
            epoch_start = time.perf_counter() - self.acc["seconds"]
            self.bar = progress_bar(len(batches), self.step_in_epoch,
                                    f"epoch {self.epoch + 1}/{epochs}", self.progress)
            while self.step_in_epoch < len(batches):
                if self._should_stop():
                    return self._stop(epoch_start)
                try:
                    s = t.step(batches[self.step_in_epoch], self.epoch)
                except (WorkerError, TaskError) as e:
                    raise self._failed(e, epoch_start) from e
                except TrainingDiverged as e:
                    raise self._diverged(e) from None
                self.step_in_epoch += 1
                self._accumulate(s)
                if self.bar is not None:
                    a = self.acc
                    self.bar.update(1)
                    self.bar.set_postfix(loss=f"{a['loss_sum'] / a['samples']:.4f}",
                                         samples_s=f"{s['samples'] / s['seconds']:.1f}")
            if self._should_stop():
                return self._stop(epoch_start)
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            try:
                self._end_epoch(epoch_start, monitor, len(batches))
            except (WorkerError, TaskError) as e:
                raise self._failed(e, epoch_start) from e
        return self._finish()

    def _failed(self, e, epoch_start):
        """Workers died or a task raised: checkpoint the last finished step; the error to raise."""
        self.acc["seconds"] = time.perf_counter() - epoch_start
        path = self._checkpoint()
        return type(e)(f"{e}; checkpoint saved to {path}; resume with --resume {self.run_dir}")

    def _diverged(self, e):
        """NaN or infinity: stop without saving (last.json keeps the last good state)."""
        last = self.run_dir / "checkpoints" / "last.json"
        kept = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was saved"
        return TrainingDiverged(
            f"training diverged: {e} in step {self.step_in_epoch + 1}/{self.trainer.steps_per_epoch} "
            f"of epoch {self.epoch + 1} (global step {self.trainer.global_step + 1}); {kept}; "
            f"lower train.lr or set train.clip_grad_norm, and start a new run")

    def _should_stop(self):
        return (self.stop_signal is not None
                or (self.max_steps is not None and self.trainer.global_step >= self.max_steps))

    def _accumulate(self, s):
        a = self.acc
        a["loss_sum"] += s["loss_sum"]
        a["correct"] += s["correct"]
        a["samples"] += s["samples"]
        a["lr"] = s["lr"]
        for key in ("compute", "wait", "broadcast", "reduce_update"):
            a[key] += s[key]

    def _end_epoch(self, epoch_start, monitor, steps):
        t, a = self.trainer, self.acc
        eval_start = time.perf_counter()
        self.reports = {split: t.evaluate(split) for split in ("val", "test") if split in t.splits}
        eval_seconds = time.perf_counter() - eval_start
        seconds = time.perf_counter() - epoch_start
        record = {"epoch": self.epoch + 1, "train_loss": a["loss_sum"] / max(1, a["samples"]),
                  "train_accuracy": a["correct"] / max(1, a["samples"])}
        for split, rep in self.reports.items():
            record[f"{split}_loss"], record[f"{split}_accuracy"] = rep["loss"], rep["accuracy"]
        train_seconds = seconds - eval_seconds
        record.update(lr=a["lr"], steps=steps, samples=a["samples"], seconds=seconds,
                      samples_per_second=a["samples"] / train_seconds if train_seconds > 0 else 0.0,
                      compute_seconds=a["compute"], wait_seconds=a["wait"],
                      broadcast_seconds=a["broadcast"], reduce_update_seconds=a["reduce_update"],
                      eval_seconds=eval_seconds, workers=t.workers, **monitor.memory(),
                      cpu_percent=monitor.cpu_percent())
        self.history.append(record)
        with _writing(self.run_dir):
            self.metrics.write(record)
        self.log(format_epoch(record))
        self.epoch, self.step_in_epoch, self.acc = self.epoch + 1, 0, _fresh_progress()
        key = "val_accuracy" if "val" in self.reports else "test_accuracy"
        improved = self.best is None or record[key] > self.best["value"]
        if improved:
            self.best = {"metric": key, "value": record[key], "epoch": record["epoch"]}
        self._checkpoint()
        if improved:
            self._checkpoint("best.json")
        self._write_eval()

    def _write_eval(self):
        out = {"epoch": self.epoch, "step": self.trainer.global_step,
               "checkpoint": str(self.run_dir / "checkpoints" / "last.json"), **self.reports}
        with _writing(self.run_dir):
            atomic_write_text(self.run_dir / "eval.json", json.dumps(out, indent=1))

    def _stop(self, epoch_start):
        self.acc["seconds"] = time.perf_counter() - epoch_start
        path = self._checkpoint()
        where = (f"epoch {self.epoch + 1}, step {self.step_in_epoch}/{self.trainer.steps_per_epoch}"
                 f" (global step {self.trainer.global_step})")
        if self.stop_signal is None:
            self.log(f"stopped after {self.max_steps} steps at {where}; checkpoint {path}")
            return self.result(stopped=True, checkpoint=path)
        name = signal.Signals(self.stop_signal).name
        raise TrainingInterrupted(f"interrupted by {name} at {where}; checkpoint saved to {path}; "
                                  f"continue with --resume {self.run_dir}",
                                  SIGNAL_EXIT[self.stop_signal], checkpoint=str(path))

    def _finish(self):
        for split, rep in self.reports.items():
            self.log(format_report(rep, f"{split} set"))
        return self.result(stopped=False, checkpoint=self.run_dir / "checkpoints" / "last.json")

    def result(self, stopped, checkpoint):
        """The dict :func:`train` returns."""
        t = self.trainer
        return {"run_dir": str(self.run_dir), "weights_sha256": weights_hash(t.weights),
                "weights": t.weights, "epochs": self.epoch, "step_in_epoch": self.step_in_epoch,
                "steps": t.global_step, "stopped": stopped, "checkpoint": str(checkpoint),
                "history": self.history, "final": self.history[-1] if self.history else None,
                "eval": self.reports, "best": self.best, "num_params": len(t.weights),
                "workers": t.workers, "micro_batch": t.engine.micro_batch}


@contextlib.contextmanager
def _writing(run_dir):
    """A failed write in the run folder (permissions, a full disk) becomes one clear RunError."""
    try:
        yield
    except OSError as e:
        name = f" ({e.filename})" if e.filename else ""
        raise RunError(f"cannot write to the run folder {run_dir}: {e.strerror or e}{name}; "
                       f"{_write_advice(e)}, or choose another folder with --run-dir") from None


def _write_advice(error):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    return "check that the folder can be created and written (permissions, a file in the way)"


def _fresh_progress():
    return {"loss_sum": 0.0, "correct": 0, "samples": 0, "seconds": 0.0, "lr": None,
            "compute": 0.0, "wait": 0.0, "broadcast": 0.0, "reduce_update": 0.0}


# -- configs and run folders ------------------------------------------------------------

def _as_config(config):
    if isinstance(config, dict):
        from .config import config_from_dict
        return config_from_dict(config)
    return config


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
                      log=_silent if quiet else print)
    if quiet:
        print(json.dumps(result, indent=1))
        return 0
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']}, step {result['step']})")
    for split in ("val", "test"):
        if split in result:
            print(format_report(result[split], f"{split} set"))
    return 0
