"""SIGINT and SIGTERM during a run: stop after this step, or at once on a second signal.

The handler only records what happened (no printing: a handler that writes
can re-enter a print in progress). The run's loop asks :meth:`StopSignals.notice`
for the line to show and :attr:`StopSignals.received` whether to stop. A
second signal raises :class:`StopNow` at once, but only inside an
:meth:`StopSignals.interruptible` region (a step or an evaluation, whose
work can be dropped); anywhere else the loop sees it at its next check,
moments later, so a checkpoint or a metrics line is never cut in half.
"""

import contextlib
import signal
import threading

from .errors import ParacnnError

#: the exit status of a run stopped by each signal (128 + its number).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class TrainingInterrupted(ParacnnError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; exit 130 or 143."""

    def __init__(self, message, exit_code, checkpoint=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.checkpoint = checkpoint


class StopNow(BaseException):
    """A second SIGINT/SIGTERM: drop the step (or evaluation) in progress and stop.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """


class StopSignals:
    """Installs the handlers for SIGINT and SIGTERM while a run lasts (main thread only)."""

    def __init__(self):
        self.received = None  # the first signal's number, once one came
        self.count = 0
        self._interruptible = False
        self._noticed = False
        self._installed = {}

    def install(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNAL_EXIT:
                self._installed[sig] = signal.signal(sig, self._on_signal)

    def restore(self):
        for sig, old in self._installed.items():
            signal.signal(sig, old)
        self._installed = {}

    def _on_signal(self, signum, frame):
        self.count += 1
        if self.received is None:
            self.received = signum
        if self.count > 1 and self._interruptible:
            self._interruptible = False
            raise StopNow()

    @property
    def now(self):
        """True after a second signal: stop without finishing anything."""
        return self.count > 1

    @property
    def exit_code(self):
        return SIGNAL_EXIT[self.received]

    @property
    def name(self):
        return signal.Signals(self.received).name

    def notice(self, doing="this step"):
        """The line to show once after the first signal (None otherwise)."""
        if self.received is None or self._noticed:
            return None
        self._noticed = True
        key = "Ctrl-C" if self.received == signal.SIGINT else self.name
        return f"{key}: stopping after {doing}; {key} again to stop now"

    def interrupted(self, where, checkpoint, run_dir, during=None):
        """The :class:`TrainingInterrupted` to raise once the run stopped ``where``, saved to ``checkpoint``.

        ``during``: the work in progress when the signal came (dropped after a second one).
        """
        dropped = f"; {during} was dropped" if during and self.now else ""
        if during == "the evaluation":
            dropped = ("; the evaluation was cut short (--resume evaluates the epoch again, "
                       "then continues)")
        return TrainingInterrupted(f"interrupted by {self.name} at {where}{dropped}; checkpoint "
                                   f"saved to {checkpoint}; continue with --resume {run_dir}",
                                   self.exit_code, checkpoint=str(checkpoint))

    @contextlib.contextmanager
    def interruptible(self):
        """A region that a second signal may cut short with :class:`StopNow`."""
        if self.now:
            raise StopNow()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


def ignore_signals_outside_the_run():
    """For ``paracnn train``: SIGINT/SIGTERM do nothing except while a :class:`Run` handles them.

    The run installs its own handlers and, when it ends, puts these back, so a
    second Ctrl-C that comes while the command is already exiting (after the
    checkpoint) cannot end it with a KeyboardInterrupt traceback and exit -2.
    """
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNAL_EXIT:
            signal.signal(sig, _ignore)


def _ignore(signum, frame):
    pass  # NOTE: a Python handler, not SIG_IGN, which exec'd children would inherit
