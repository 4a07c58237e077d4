"""What a person watching a run sees between the epoch lines.

On a terminal, a tqdm bar per epoch that stays when the epoch ends, with the
running loss and accuracy of the epoch and a smoothed samples/s, and a bar of
its own while the validation and test sets are evaluated. Without a terminal
(nohup, CI, a batch scheduler), a line every ``train.log_every`` steps, but
never two within :data:`MIN_LINE_SECONDS` and never more than
:data:`LINE_SECONDS` without one::

    epoch 1/5 step 120/938: loss 0.4127 acc 0.8760 | 114.9 samples/s | ETA 1:58
"""

import sys
import time

#: without a terminal, the longest silence between progress lines (seconds).
LINE_SECONDS = 30.0
#: without a terminal, the shortest gap between two progress lines, so that a
#: run of many quick steps is not flooded (seconds).
MIN_LINE_SECONDS = 2.0
#: the weight of the latest step in the smoothed samples/s of the bar.
SMOOTHING = 0.1


def progress_mode(enabled):
    """``"bar"``, ``"lines"`` or None, from ``enabled`` (None: a bar on a terminal, lines otherwise)."""
    if enabled is None:
        return "bar" if sys.stdout.isatty() else "lines"
    return "bar" if enabled else None


class Progress:
    """Progress of the epochs of one run, shown as :func:`progress_mode` says.

    Args:
        mode: ``"bar"``, ``"lines"`` or None (nothing).
        log: where lines go when there is no bar.
        epochs: the run's number of epochs (for ``epoch 2/5``).
        log_every: steps between progress lines (without a terminal).
    """

    def __init__(self, mode, log, *, epochs, log_every):
        self.mode, self.log = mode, log
        self.epochs, self.log_every = epochs, log_every
        self.bar = None
        self.eval = None
        self.epoch = 0
        self.total = 0
        self.last_line = time.monotonic()
        self.smoothed = None  # (samples, seconds), exponentially weighted
        self.timed_steps, self.timed_seconds = 0, 0.0  # this epoch, this session: for the ETA
        self.eval_ticks = {}  # split: ticks its last evaluation took (the next one's bar total)

    def say(self, line):
        """Print ``line`` above the bars (or through ``log`` when there is none)."""
        if self.eval is not None and self.eval.bar is not None:
            self.eval.bar.write(line)
        elif self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            self.log(line)
        self.last_line = time.monotonic()

    def start_epoch(self, epoch, done, total):
        """Epoch ``epoch`` (0-based) of ``total`` steps starts with ``done`` of them already taken."""
        self.close()
        self.epoch, self.total = epoch, total
        self.timed_steps, self.timed_seconds = 0, 0.0
        self.last_line = time.monotonic()
        if self.mode == "bar":
            self.bar = _tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{self.epochs}",
                             unit="step", leave=True)

    def step(self, step_in_epoch, acc, s):
        """After a step: ``acc`` sums the epoch's steps so far, ``s`` is the step's own (both
        :class:`~paracnn.parallel.step_stats.StepStats`)."""
        self.timed_steps += 1
        self.timed_seconds += s.seconds
        samples, seconds = s.samples, s.seconds
        if self.smoothed is None:
            self.smoothed = (samples, seconds)
        else:
            a, b = self.smoothed
            self.smoothed = (a + SMOOTHING * (samples - a), b + SMOOTHING * (seconds - b))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"loss {_mean(acc.loss_sum, acc.samples):.4f} "
                                     f"acc {_mean(acc.correct, acc.samples):.4f} "
                                     f"{self.samples_per_second():.1f} samples/s", refresh=False)
        elif self.mode == "lines" and self._line_due(step_in_epoch):
            self.say(self.line(step_in_epoch, acc))

    def samples_per_second(self):
        if not self.smoothed or self.smoothed[1] <= 0:
            return 0.0
        return self.smoothed[0] / self.smoothed[1]

    def _line_due(self, step_in_epoch):
        if step_in_epoch >= self.total:
            return False  # the epoch's own lines follow at once
        quiet_for = time.monotonic() - self.last_line
        if quiet_for >= LINE_SECONDS:
            return True
        return step_in_epoch % self.log_every == 0 and quiet_for >= MIN_LINE_SECONDS

    def line(self, step_in_epoch, acc):
        """The progress line for the state after ``step_in_epoch`` steps of the epoch."""
        left = self.total - step_in_epoch
        eta = left * self.timed_seconds / self.timed_steps if self.timed_steps else 0.0
        return (f"epoch {self.epoch + 1}/{self.epochs} step {step_in_epoch}/{self.total}: "
                f"loss {_mean(acc.loss_sum, acc.samples):.4f} "
                f"acc {_mean(acc.correct, acc.samples):.4f} | "
                f"{self.samples_per_second():.1f} samples/s | ETA {_clock(eta)}")

    def evaluating(self, split, samples):
        """An :class:`EvalProgress` for evaluating ``split`` (``samples`` images); close it after."""
        self.eval = EvalProgress(self, split, samples)
        return self.eval

    def close(self):
        if self.eval is not None:
            self.eval.close()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EvalProgress:
    """Shows that an evaluation is running: a bar on a terminal, a line after a long silence."""

    def __init__(self, progress, split, samples):
        self.progress, self.split = progress, split
        self.what = f"evaluating {split} ({samples:,} samples)"
        self.start = time.monotonic()
        self.ticks = 0
        self.bar = None
        if progress.mode == "bar":
            # NOTE: the engine does not say how far it got, only when it may be stopped (between
            # chunks); the first evaluation of a split counts those calls, later ones show a bar.
            total = progress.eval_ticks.get(split)
            self.bar = _tqdm(total=total, desc=self.what, leave=False,
                             bar_format="{desc}: {elapsed}" if total is None else
                             "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def tick(self):
        """Called between chunks of the evaluation."""
        self.ticks += 1
        if self.bar is not None:
            if self.bar.total is None or self.bar.n + 1 < self.bar.total:
                self.bar.update(1 if self.ticks > 1 else 0)
            self.bar.refresh()
        elif self.progress.mode == "lines" and time.monotonic() - self.progress.last_line >= LINE_SECONDS:
            self.progress.say(f"{self.what}: {time.monotonic() - self.start:.0f} s so far")

    def close(self, finished=False):
        """Remove the indicator; ``finished``: the evaluation ran to its end (its ticks count)."""
        if finished:
            self.progress.eval_ticks[self.split] = self.ticks
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.progress.eval is self:
            self.progress.eval = None


def _tqdm(**kwargs):
    from tqdm import tqdm

    class _Bar(tqdm):
        # NOTE: no monitor thread: a worker replaced mid-run is forked from this process.
        monitor_interval = 0

    return _Bar(dynamic_ncols=True, **kwargs)


def _mean(total, count):
    return total / count if count else 0.0


def _clock(seconds):
    """``1:05:09`` or ``5:09``."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
