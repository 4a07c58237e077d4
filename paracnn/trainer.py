"""The Trainer: one optimiser step at a time over an :class:`~paracnn.parallel.Engine`.

A step takes ``batch_size`` indices of the epoch order (a function of
``(seed, epoch)``), asks the engine for the mean gradient, optionally clips it,
checks it is finite, and applies the optimiser in the parent. The weights
therefore depend only on the config, never on the number of workers or the
start method. :mod:`paracnn.run` adds epochs, evaluation, checkpoints and
metrics around it; ``paracnn profile`` times its steps.
"""

import hashlib
import math
import time
from array import array

from .errors import CheckpointError, ParacnnError
from .metrics import classification_report
from .optim import Schedule, clip_grad_norm, make_optimizer
from .parallel import Engine

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

    The unit of work is :meth:`step`; :class:`paracnn.run.Run` adds epochs, evaluation,
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


def _as_config(config):
    if isinstance(config, dict):
        from .config import config_from_dict
        return config_from_dict(config)
    return config
