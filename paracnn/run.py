"""One training run: epochs and steps, evaluation, checkpoints, metrics and signals.

:class:`Run` wraps a :class:`~paracnn.trainer.Trainer` with everything a long
run needs: the run folder, ``metrics.jsonl``/``metrics.csv``, ``last.json`` and
``best.json`` checkpoints written atomically, the progress bar, and SIGINT /
SIGTERM handling that stops at the next step boundary with a checkpoint. A run
resumed from any checkpoint (epoch end or mid-epoch) reaches the weights of an
uninterrupted run.

Train loss and accuracy of an epoch average the steps' forward passes (with
dropout, at each step's weights), as Keras reports them.
"""

import contextlib
import errno
import json
import signal
import threading
import time

from .checkpoint import atomic_write_text, save_checkpoint
from .errors import CheckpointError, ParacnnError, RunError, TaskError
from .metrics import format_report
from .monitor import MetricsWriter, ResourceMonitor, format_epoch, progress_bar
from .parallel import WorkerError
from .trainer import Trainer, TrainingDiverged, weights_hash

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingInterrupted(ParacnnError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; exit 130 or 143."""

    def __init__(self, message, exit_code, checkpoint=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.checkpoint = checkpoint


class Run:
    """One call of :func:`paracnn.train.train`: the loop over epochs and steps with its bookkeeping."""

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
            if t.label_noise is not None:
                atomic_write_text(self.run_dir / "label_noise.json", t.label_noise.to_json())
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
                optimizer=t.optimizer_state(), epoch=self.epoch, step=t.global_step,
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
        for key in ("compute", "wait", "tail", "broadcast", "reduce_update"):
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
                      compute_seconds=a["compute"], wait_seconds=a["wait"], tail_seconds=a["tail"],
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
        """The dict :func:`paracnn.train.train` returns."""
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
            "compute": 0.0, "wait": 0.0, "tail": 0.0, "broadcast": 0.0, "reduce_update": 0.0}
