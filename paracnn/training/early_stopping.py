"""Which epoch is the best one, on the validation split, and when to stop waiting for a better one.

``checkpoints/best.json`` holds the weights of the epoch with the best
validation score: ``val_accuracy`` by default, or the ``monitor`` of
``train.early_stopping``. Never the test score: choosing on the test set would
make the test accuracy of best.json an optimistic estimate. Without a
validation split (``data.validation: 0``) no best.json is written.

``train.early_stopping`` (Keras's ``EarlyStopping``) ends the run once
``patience`` epochs in a row have not improved the monitored score by more
than ``min_delta``::

    train:
      early_stopping: {monitor: val_loss, patience: 2, min_delta: 0.0}

The count of epochs without improvement is the number of finished epochs less
the epoch of the best record, which every checkpoint holds (``best``), so a
resumed run keeps counting where it stopped.
"""

from functools import partial

from ..config.checks import check_choice
from ..layer import check_float, check_int

#: the scores early stopping can watch, and whether higher is better.
MONITORS = {"val_loss": False, "val_accuracy": True}
#: the score best.json is chosen by when there is no early stopping.
DEFAULT_MONITOR = "val_accuracy"
#: the values of ``train.early_stopping`` left out (seed 001 used patience 2 on val_loss).
DEFAULTS = {"monitor": "val_loss", "patience": 2, "min_delta": 0.0}


#: the rules of ``train.early_stopping``'s keys, for :mod:`paracnn.config.schema`.
RULES = {
    "monitor": partial(check_choice, options=tuple(MONITORS)),
    "patience": partial(check_int, minimum=0),
    "min_delta": partial(check_float, low=0.0),
}

NO_VALIDATION = ("train.early_stopping watches the validation split, but data.validation is 0; "
                 "hold some training images out with data.validation: 0.1")


class BestEpoch:
    """Tracks the best epoch by the monitored validation score and decides when to stop early.

    Args:
        train_cfg: the resolved ``train:`` section (its ``early_stopping``, if any).
        has_validation: whether the run has a validation split; without one
            there is no best epoch (and the schema refuses early stopping).
        record: the ``best`` record of a checkpoint being resumed, or None.
        epochs_done: the epochs that checkpoint finished.
    """

    def __init__(self, train_cfg, has_validation, record=None, epochs_done=0):
        self.rule = train_cfg.get("early_stopping")
        self.metric = self.rule["monitor"] if self.rule else DEFAULT_MONITOR
        self.min_delta = self.rule["min_delta"] if self.rule else 0.0
        self.enabled = has_validation
        # NOTE: a record chosen by another score (test_accuracy, before best.json needed a
        # validation split) cannot be compared with this one: start afresh.
        keep = has_validation and record is not None and record.get("metric") == self.metric
        self.record = dict(record) if keep else None
        self.epochs_done = epochs_done

    def update(self, scores):
        """Take epoch ``scores["epoch"]``'s scores; True if it is the new best (save best.json)."""
        self.epochs_done = scores["epoch"]
        if not self.enabled:
            return False
        value = scores[self.metric]
        if self.record is not None and not self._better(value, self.record["value"]):
            return False
        self.record = {"metric": self.metric, "value": value, "epoch": scores["epoch"]}
        return True

    def _better(self, value, best):
        if MONITORS[self.metric]:
            return value > best + self.min_delta
        return value < best - self.min_delta

    @property
    def waited(self):
        """Finished epochs since the best one."""
        return self.epochs_done - self.record["epoch"] if self.record else 0

    @property
    def should_stop(self):
        """True once ``patience`` epochs in a row did not improve the monitored score."""
        return bool(self.rule) and self.record is not None and self.waited >= self.rule["patience"]

    def stop_event(self):
        """The ``metrics.jsonl`` record that says why the run stopped."""
        return {"event": "early_stop", "epoch": self.epochs_done, "monitor": self.metric,
                "best": self.record["value"], "best_epoch": self.record["epoch"],
                "patience": self.rule["patience"], "min_delta": self.min_delta}

    def stop_line(self, epochs):
        """The one line a person reads when the run stops early."""
        r = self.record
        return (f"early stopping: {self.metric} has not improved by more than {self.min_delta:g} "
                f"for {_epochs(self.waited)} (patience {self.rule['patience']}); stopped after epoch "
                f"{self.epochs_done} of {epochs}; best {self.metric} {r['value']:.4f} at epoch "
                f"{r['epoch']}, kept in checkpoints/best.json")

    def summary(self, path):
        """The run's last line about the best epoch, whose weights ``path`` holds."""
        r = self.record
        return f"best epoch {r['epoch']} by {r['metric']} {r['value']:.4f}: {path}"

    def describe(self):
        """The line said once at the start: what chooses best.json (or why there is none)."""
        if not self.enabled:
            return ("no validation split (data.validation is 0): no checkpoints/best.json is kept, "
                    "so that no epoch is chosen on the test set; set data.validation: 0.1 to keep "
                    "the best epoch")
        stop = (f"; early stopping after {_epochs(self.rule['patience'])} without an improvement of "
                f"more than {self.min_delta:g}" if self.rule else "")
        return f"checkpoints/best.json keeps the epoch with the best {self.metric}{stop}"


def _epochs(n):
    return f"{n} epoch{'s' if n != 1 else ''}"
