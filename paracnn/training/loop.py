"""One training run: epochs and steps, evaluation, checkpoints, metrics, progress and signals.

:class:`Run` wraps a :class:`~paracnn.training.step.Trainer` with everything a long
run needs: ``metrics.jsonl``/``metrics.csv`` per epoch and ``steps.jsonl``
every ``train.log_every`` steps, ``last.json`` (at every epoch end and every
``train.checkpoint_every``) and ``best.json`` checkpoints written atomically,
progress (:mod:`paracnn.progress`), and SIGINT / SIGTERM handling
(:mod:`paracnn.signals`): the first signal stops after the step in progress,
or at once during an evaluation, a second one drops the step in progress;
either way with a checkpoint of the last finished step. A run resumed from
any checkpoint (epoch end or mid-epoch) reaches the weights of an
uninterrupted run. ``best.json`` and early stopping follow the validation
split (:mod:`paracnn.training.early_stopping`); :mod:`paracnn.training.tally` keeps the totals.
"""

import time
from contextlib import contextmanager

from .early_stopping import BestEpoch
from ..errors import TaskError
from ..intervals import Every
from ..metrics import format_report
from ..monitor import ResourceMonitor, format_epoch, format_systems
from ..parallel import EvaluationStopped, WorkerError
from ..progress import Progress, progress_mode
from ..runfolder import RunFiles, count, run_result
from ..signals import SIGNAL_EXIT, StopNow, StopSignals, TrainingInterrupted
from .tally import Tally
from .step import Trainer, TrainingDiverged

__all__ = ["Run", "TrainingInterrupted", "SIGNAL_EXIT"]


class Run:
    """One call of :func:`paracnn.train.train`: the loop over epochs and steps with its bookkeeping.

    Args:
        config: the resolved :class:`~paracnn.config.Config`.
        run_dir: the run folder (already claimed, see :mod:`paracnn.runfolder`).
        ckpt: a loaded checkpoint to resume from, or None.
        workers, start_method, data_dir, backend, address: passed to the
            :class:`~paracnn.training.step.Trainer`.
        progress: True/False for progress, None for a bar on a terminal and lines otherwise.
        max_steps: stop with a checkpoint (without raising) after this many steps in total.
        log: where lines go.
        quiet: leave out the systems line of each epoch.
    """

    def __init__(self, config, run_dir, ckpt, *, workers=None, start_method=None, data_dir=None,
                 progress=None, max_steps=None, log=print, quiet=False, backend=None, address=None):
        self.config, self.run_dir, self.ckpt = config, run_dir, ckpt
        self.options = dict(workers=workers, start_method=start_method, data_dir=data_dir, log=self.say,
                            backend=backend, address=address)
        self.max_steps, self.log, self.quiet = max_steps, log, quiet
        tc = config.data["train"]
        self.epochs = tc["epochs"]
        self.signals = StopSignals()
        self.view = Progress(progress_mode(progress), log, epochs=self.epochs, log_every=1)
        self.checkpoint_clock = Every(tc.get("checkpoint_every"))
        self.trainer = None  # started by execute()
        self.files = RunFiles(run_dir)
        # NOTE: what follows depends on the datasets; _start() sets it once the trainer holds them.
        self.log_every = 1
        self.best = BestEpoch(tc, has_validation=False)
        self.epoch, self.step_in_epoch = 0, 0
        self.tally = Tally()
        self.history, self.reports = [], {}
        self.started = time.perf_counter()  # for steps.jsonl's "seconds"
        self.epoch_start = self.started  # perf_counter() at the epoch's start, less time before a resume

    def steps_taken(self):
        """Optimiser steps the run has taken in all, 0 before its trainer started."""
        return self.trainer.global_step if self.trainer is not None else 0

    def say(self, line):
        """Print ``line`` (above the progress bar, if one is shown)."""
        self.view.say(line)

    def execute(self):
        """Run to the end (or to a stop); return :meth:`result`."""
        self.signals.install()
        try:
            with self._start_trainer() as trainer:
                self.trainer = trainer
                return self._loop()
        finally:
            self.view.close()
            self.signals.restore()

    def _start_trainer(self):
        """The Trainer (data, model, workers); a second signal while it starts stops at once."""
        try:
            with self.signals.interruptible():
                return Trainer(self.config, **self.options)
        except StopNow:
            raise TrainingInterrupted(f"interrupted by {self.signals.name} while starting; nothing "
                                      f"was trained", self.signals.exit_code) from None

    # -- the loop ------------------------------------------------------------------------
    def _loop(self):
        """The training algorithm: epochs of steps, each epoch evaluated and checkpointed."""
        t = self.trainer
        self._start()
        monitor = ResourceMonitor(t.engine.worker_pids)
        while self.epoch < self.epochs and not self.best.should_stop:
            batches = t.batches(self.epoch)
            self._start_epoch(monitor, len(batches))
            while self.step_in_epoch < len(batches):
                if self._should_stop():
                    return self._stop()
                try:
                    self._take_step(batches[self.step_in_epoch])
                except StopNow:
                    return self._stop(during="the step in progress")
            if self._should_stop():
                return self._stop()
            try:
                self._end_epoch(monitor, len(batches))
            except EvaluationStopped:
                return self._stop(during="the evaluation")
        return self._finish()

    def _start_epoch(self, monitor, steps):
        monitor.start()
        self.epoch_start = time.perf_counter() - self.tally.elapsed
        self.view.start_epoch(self.epoch, self.step_in_epoch, steps)

    def _take_step(self, indices):
        """One optimiser step, counted, shown, logged and checkpointed when due."""
        t = self.trainer
        with self._translating_errors():
            s = t.step(indices, self.epoch)
        self.step_in_epoch += 1
        self.tally.add(s)
        self.view.step(self.step_in_epoch, self.tally.epoch, s)
        if self.step_in_epoch % self.log_every == 0 or self.step_in_epoch == t.steps_per_epoch:
            self.files.write_steps_row(self.tally.steps_row(
                step=t.global_step, epoch=self.epoch + 1, seconds=time.perf_counter() - self.started))
        if self.checkpoint_clock.due(t.global_step):
            self._checkpoint()

    @contextmanager
    def _translating_errors(self):
        """A step that a signal can cut short, whose worker failures and divergence become run errors."""
        before = self.trainer.global_step
        try:
            with self.signals.interruptible():
                yield
        except StopNow:
            # NOTE: the engine may have published the step just before the signal came;
            # then it counts as taken (its loss and accuracy are lost with the step's figures).
            self.step_in_epoch += self.trainer.global_step - before
            raise
        except (WorkerError, TaskError) as e:
            raise self._failed(e) from e
        except TrainingDiverged as e:
            raise self._diverged(e) from None

    def _should_stop(self):
        notice = self.signals.notice()
        if notice:
            self.say(notice)
        return (self.signals.received is not None
                or (self.max_steps is not None and self.trainer.global_step >= self.max_steps))

    def _should_stop_evaluating(self):
        """``should_stop`` for the engine's evaluation: also keeps its progress indicator going."""
        if self.view.eval is not None:
            self.view.eval.tick()
        notice = self.signals.notice("this part of the evaluation")
        if notice:
            self.say(notice)
        return self.signals.received is not None

    # -- state ---------------------------------------------------------------------------
    def _start(self):
        """Create the run's files, or take the state of the checkpoint being resumed."""
        t = self.trainer
        self.files.create(self.config, t.label_noise, with_val="val" in t.splits)
        tc = self.config.data["train"]
        self.log_every = tc.get("log_every") or max(1, t.steps_per_epoch // 40)
        self.view.log_every = self.log_every
        c = self.ckpt
        if c is not None:
            t.load_state(c)
            self.epoch, self.step_in_epoch = c["epoch"], c.get("step_in_epoch", 0)
            self.tally = Tally(c.get("progress"))
            self.history = self.files.resume(self.epoch, c["step"])
            self.say(f"resuming from {c['path']}: epoch {self.epoch + 1}, step {self.step_in_epoch} "
                     f"(global step {c['step']})")
        self.best = BestEpoch(tc, "val" in t.splits, c and c.get("best"), epochs_done=self.epoch)
        self._header()

    def _header(self):
        t = self.trainer
        self.say(f"training {t.model.num_params():,} parameters on {t.train_size:,} samples: "
                 f"{count(self.epochs, 'epoch')} of {count(t.steps_per_epoch, 'step')}, batch "
                 f"{t.batch_size}, micro-batch {t.engine.micro_batch}, workers {t.workers}"
                 + (f" ({t.start_method})" if t.start_method else "") + f"; run {self.run_dir}")
        if not self.best.enabled or self.best.rule:
            self.say(self.best.describe())

    def _checkpoint(self, name="last.json"):
        """Save the state after the last finished step (with the epoch's totals when mid-epoch)."""
        t = self.trainer
        progress = None
        if self.step_in_epoch:
            progress = self.tally.progress(time.perf_counter() - self.epoch_start)
        path = self.files.checkpoint(
            name, config=self.config.data, weights=t.weights, params=t.model.param_layout(),
            optimizer=t.optimizer_state(), epoch=self.epoch, step=t.global_step,
            step_in_epoch=self.step_in_epoch, metrics=self.history[-1] if self.history else None,
            progress=progress, best=self.best.record)
        self.checkpoint_clock.reset()
        return path

    # -- epoch end -----------------------------------------------------------------------
    def _evaluate(self):
        """Evaluate the validation and test sets; :class:`EvaluationStopped` on a signal."""
        t, reports = self.trainer, {}
        for split in ("val", "test"):
            if split not in t.splits:
                continue
            shown = self.view.evaluating(split, len(t.engine.datasets[split]))
            try:
                with self.signals.interruptible():
                    reports[split] = t.evaluate(split, should_stop=self._should_stop_evaluating)
            except StopNow:
                raise EvaluationStopped("a second signal") from None
            finally:
                shown.close(finished=split in reports)
        return reports

    def _end_epoch(self, monitor, steps):
        """Evaluate, write the epoch's record, keep last.json (and best.json), maybe stop early."""
        self.view.close()
        eval_start = time.perf_counter()
        try:
            self.reports = self._evaluate()
        except (WorkerError, TaskError) as e:
            raise self._failed(e) from e
        eval_seconds = time.perf_counter() - eval_start
        record = self.tally.epoch_record(
            self.epoch + 1, self.reports, steps=steps, seconds=time.perf_counter() - self.epoch_start,
            eval_seconds=eval_seconds, workers=self.trainer.workers,
            resources={**monitor.memory(), "cpu_percent": monitor.cpu_percent()})
        self.history.append(record)
        self.files.write_epoch(record)
        improved = self.best.update(record)
        self.say(format_epoch(record, self.epochs))
        if not self.quiet:
            self.say(format_systems(record))
        self.epoch, self.step_in_epoch, self.tally = self.epoch + 1, 0, Tally()
        self._checkpoint()
        if improved:
            self._checkpoint("best.json")
        self.files.write_eval({"epoch": self.epoch, "step": self.trainer.global_step,
                               "checkpoint": str(self.run_dir / "checkpoints" / "last.json"),
                               **self.reports})
        if self.best.should_stop:
            self.files.write_event(self.best.stop_event())
            self.say(self.best.stop_line(self.epochs))

    # -- endings -------------------------------------------------------------------------
    def _stop(self, during=None):
        """Stop with a checkpoint of the last finished step: max_steps reached, or a signal."""
        path = self._checkpoint()
        where = (f"epoch {self.epoch + 1}, step {self.step_in_epoch}/{self.trainer.steps_per_epoch}"
                 f" (global step {self.trainer.global_step})")
        if self.signals.received is None:
            self.say(f"stopped after {self.max_steps} steps at {where}; checkpoint {path}")
            return self.result(stopped=True, checkpoint=path)
        raise self.signals.interrupted(where, path, self.run_dir, during)

    def _failed(self, e):
        """Workers died or a task raised: checkpoint the last finished step; the error to raise."""
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

    def _finish(self):
        for split, rep in self.reports.items():
            self.say(format_report(rep, f"{split} set"))
        if self.best.record:
            self.say(self.best.summary(self.run_dir / "checkpoints" / "best.json"))
        return self.result(stopped=False, checkpoint=self.run_dir / "checkpoints" / "last.json")

    def result(self, stopped, checkpoint):
        """The dict :func:`paracnn.train.train` returns (see :func:`~paracnn.runfolder.run_result`)."""
        t = self.trainer
        return run_result(self.run_dir, t.weights, epochs=self.epoch, steps=t.global_step,
                          step_in_epoch=self.step_in_epoch, stopped=stopped, checkpoint=checkpoint,
                          history=self.history, eval=self.reports, best=self.best.record,
                          workers=t.workers, micro_batch=t.engine.micro_batch,
                          stopped_early=self.best.should_stop)
