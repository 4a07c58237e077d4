"""The running totals of a run: the epoch in progress and the ``steps.jsonl`` window.

Each step's :class:`~paracnn.parallel.step_stats.StepStats` is added to both;
the window becomes a ``steps.jsonl`` row every ``train.log_every`` steps, the
epoch becomes its ``metrics.jsonl`` record (the columns are described in
:mod:`paracnn.monitor`). A mid-epoch checkpoint saves both as its
``progress``, so a resumed run reports the epoch it finishes as an
uninterrupted run would.

Train loss and accuracy of an epoch average the steps' forward passes (with
dropout, at each step's weights), as Keras reports them.
"""

from ..parallel.step_stats import StepStats

#: the epoch's totals a checkpoint's ``progress`` keeps, under their StepStats names.
EPOCH_KEYS = ("loss_sum", "correct", "samples", "compute", "wait", "tail", "broadcast",
              "reduce_update", "lr")
#: the window's totals, kept in ``progress`` as ``window_<name>``.
WINDOW_KEYS = ("loss_sum", "correct", "samples", "seconds")


class Tally:
    """The totals of the epoch in progress and of the steps since the last ``steps.jsonl`` row.

    Args:
        progress: a checkpoint's ``progress`` (the epoch it was saved in), or None
            for a fresh epoch.
    """

    def __init__(self, progress=None):
        progress = progress or {}
        self.epoch = StepStats(**{k: progress[k] for k in EPOCH_KEYS if k in progress})
        self.window = StepStats(**{k: progress["window_" + k] for k in WINDOW_KEYS
                                   if "window_" + k in progress})
        #: seconds the epoch had run before this session (a resumed mid-epoch checkpoint's)
        self.elapsed = progress.get("seconds", 0.0)

    def add(self, step):
        """Count one step's :class:`StepStats` in the epoch and in the window."""
        self.epoch += step
        self.window += step

    def progress(self, elapsed):
        """The checkpoint's ``progress`` after ``elapsed`` seconds of the epoch."""
        out = {k: getattr(self.epoch, k) for k in EPOCH_KEYS}
        out["seconds"] = elapsed
        out.update({"window_" + k: getattr(self.window, k) for k in WINDOW_KEYS})
        return out

    def steps_row(self, *, step, epoch, seconds):
        """The ``steps.jsonl`` row of the window (then the window starts again)."""
        w, self.window = self.window, StepStats()
        return {"step": step, "epoch": epoch, "loss": w.loss_sum / max(1, w.samples),
                "accuracy": w.correct / max(1, w.samples), "lr": w.lr,
                "samples_per_second": w.samples / w.seconds if w.seconds > 0 else 0.0,
                "seconds": seconds}

    def epoch_record(self, epoch, reports, *, steps, seconds, eval_seconds, workers, resources):
        """The ``metrics.jsonl`` record of epoch ``epoch`` (1-based).

        Args:
            reports: ``{split: classification report}`` of the evaluated splits.
            steps: the epoch's steps; seconds, eval_seconds: its wall time, and the
                part of it spent evaluating.
            workers: the worker count; resources: memory and CPU figures
                (:class:`~paracnn.monitor.ResourceMonitor`).
        """
        e = self.epoch
        record = {"epoch": epoch, "train_loss": e.loss_sum / max(1, e.samples),
                  "train_accuracy": e.correct / max(1, e.samples)}
        for split, rep in reports.items():
            record[f"{split}_loss"], record[f"{split}_accuracy"] = rep["loss"], rep["accuracy"]
        train_seconds = seconds - eval_seconds
        record.update(lr=e.lr, steps=steps, samples=e.samples, seconds=seconds,
                      samples_per_second=e.samples / train_seconds if train_seconds > 0 else 0.0,
                      compute_seconds=e.compute, wait_seconds=e.wait, tail_seconds=e.tail,
                      broadcast_seconds=e.broadcast, reduce_update_seconds=e.reduce_update,
                      eval_seconds=eval_seconds, workers=workers, **resources)
        return record
