"""The Trainer: one optimiser step at a time over an :class:`~paracnn.parallel.Engine`.

A step takes ``batch_size`` indices of the epoch order (a function of
``(seed, epoch)``) and has the engine compute the mean gradient, optionally
clip it, and apply the optimiser (slice by slice in the workers, when there
are two or more); a NaN or infinity anywhere stops the run with the last good
weights kept. The weights depend only on the config, never on the number of
workers or the start method. :mod:`paracnn.training.loop` adds epochs, evaluation,
checkpoints and metrics around it; ``paracnn profile`` times its steps.
"""

import hashlib
import math
import time
from array import array

from ..checkpoint import check_fits
from ..contract import check_model_contract
from ..errors import CheckpointError, ParacnnError
from ..metrics import classification_report
from ..optim import Schedule, make_optimizer
from ..parallel import Engine
from ..parallel.tasks import all_finite  # noqa: F401 - re-exported by paracnn.train
from ..workers import resolve_workers

#: what :attr:`StepStats.diverged <paracnn.parallel.step_stats.StepStats.diverged>` means, for the error.
DIVERGED = {"loss": "the loss became {}", "gradient": "the gradient holds NaN or infinite values",
            "weights": "the update made some weights NaN or infinite"}


class TrainingDiverged(ParacnnError):
    """The loss, the gradient or the weights became NaN or infinite; exit 1."""

    exit_code = 1


def weights_hash(weights):
    """SHA-256 of the float64 bytes of ``weights``: equal hashes mean bit-identical weights."""
    return hashlib.sha256(array("d", weights).tobytes()).hexdigest()


class Trainer:
    """A model, its optimiser and schedule, its datasets and an :class:`Engine`.

    The unit of work is :meth:`step`; :class:`paracnn.training.loop.Run` adds epochs, evaluation,
    checkpoints and metrics around it (and ``paracnn profile`` can time steps).

    The weights and the optimiser's buffers and step count live in the engine
    (shared memory with workers): read them with :attr:`weights` and
    :meth:`optimizer_state`. :attr:`optimizer` holds the hyperparameters only;
    its own ``state_dict()`` is not the training state (both pack it the same way).

    Args:
        config: a :class:`~paracnn.config.Config` (or its ``.data`` dict).
        workers: worker processes or ``auto`` (None: ``train.workers``); 0 runs in-process.
        start_method: None for ``train.start_method`` or the platform default.
        data_dir: overrides ``data.dir``.
        backend, address: None for ``train.backend`` and ``train.ray_address``.
        log: called with human-readable lines.
    """

    def __init__(self, config, *, workers=None, start_method=None, data_dir=None, log=print,
                 backend=None, address=None):
        from ..data import load_datasets
        from ..parallel.ray_spec import backend_spec

        self.config = as_config(config)
        cfg = self.config.data
        tc = self.train_cfg = cfg["train"]
        self.seed = tc["seed"]
        self.workers = resolve_workers(workers, tc)
        self.log = log
        self.model = self.config.build_model(self.seed)
        self.optimizer = make_optimizer(tc)
        for line in self.config.warnings():
            log(line)
        # NOTE: before the data is loaded, so a missing extra fails at once
        self.backend = backend_spec(cfg, self.workers, backend, address)
        self.batch_size = tc["batch_size"]
        self.clip = tc.get("clip_grad_norm")
        sets = load_datasets(cfg["data"], seed=self.seed, data_dir=data_dir)
        self.class_names, self.num_classes = sets.classes, sets.num_classes
        self.label_noise = sets.label_noise  # written to RUN/label_noise.json by paracnn.training.loop
        splits = {"train": sets.train, "test": sets.test}
        if sets.val is not None:
            splits["val"] = sets.val
        self.train_size = len(sets.train)
        self.steps_per_epoch = math.ceil(self.train_size / self.batch_size)
        self.schedule = Schedule(tc["schedule"], tc["lr"], tc["epochs"] * self.steps_per_epoch,
                                 warmup_steps=tc["warmup_steps"])
        del sets  # NOTE: the Engine keeps shared-memory copies; the originals can be freed.
        self.engine = Engine(self.model, splits, workers=self.workers, batch_size=self.batch_size,
                             optimizer=self.optimizer, micro_batch=tc.get("micro_batch"),
                             eval_batch=tc.get("eval_batch"),
                             seed=self.seed, start_method=start_method or tc.get("start_method"),
                             log=log, max_failures=tc["max_worker_failures"],
                             task_timeout=tc["worker_timeout"] or None, backend=self.backend)
        self.start_method = self.engine.pool.start_method if self.engine.pool else None
        self.engine.set_state(self.model.get_weights())
        # NOTE: a layer that breaks the protocol would train on wrong gradients silently.
        self.contract_checked = False
        self._steps_at = (0, self.engine.version)  # (global step, engine version) when last set

    @property
    def global_step(self):
        """Optimiser steps taken in the whole run.

        Counted from the engine's published weight versions, so the count and
        the weights always agree, even when a second Ctrl-C cuts a step short
        just after the engine published it.
        """
        steps, version = self._steps_at
        return steps + self.engine.version - version

    @property
    def weights(self):
        """The current weights, a list of floats (read from the engine's shared memory)."""
        return self.engine.get_weights()

    def optimizer_state(self):
        """JSON-safe optimiser state, packed as :meth:`Optimizer.state_dict
        <paracnn.optim.base.Optimizer.state_dict>` packs its own (no buffers before the first step)."""
        steps = self.engine.steps
        return self.optimizer.pack_state(self.engine.get_buffers() if steps else {}, steps)

    @property
    def splits(self):
        return list(self.engine.datasets)

    def batches(self, epoch):
        """The mini-batches (lists of sample indices) of ``epoch``, in order."""
        from ..data import epoch_order

        order = epoch_order(self.train_size, self.seed, epoch)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def step(self, indices, epoch):
        """One optimiser step on ``indices``; returns its :class:`~paracnn.parallel.step_stats.StepStats`.

        The engine's record, with the step's learning rate and its wall time
        (``seconds``, the contract check on the first step left out) added.
        Raises :class:`TrainingDiverged` when the loss, the gradient or the new
        weights were not finite (the weights stay as they were).
        """
        if not self.contract_checked:  # once, in the parent, on the first sample, before timing
            x, _ = self.engine.datasets["train"].sample(indices[0])
            check_model_contract(self.model, x, seed=self.seed, config=self.config)
            self.contract_checked = True
        start = time.perf_counter()
        lr = self.schedule(epoch, self.global_step)
        s = self.engine.step(indices, epoch, lr, clip=self.clip)
        if s.diverged is not None:
            raise TrainingDiverged(DIVERGED[s.diverged].format(s.loss_sum))
        s.lr, s.seconds = lr, time.perf_counter() - start
        return s

    def evaluate(self, split, should_stop=None):
        """A :func:`~paracnn.metrics.classification_report` of ``split`` at the current weights.

        ``should_stop``: see :meth:`Engine.evaluate <paracnn.parallel.Engine.evaluate>`; it
        raises :class:`~paracnn.parallel.EvaluationStopped`.
        """
        loss_sum, preds, _ = self.engine.evaluate(split, should_stop=should_stop)
        labels = self.engine.datasets[split].labels_list()
        return classification_report(labels, preds, self.num_classes, loss_sum, self.class_names)

    def load_state(self, ckpt):
        """Take weights, optimiser state and step count from a loaded checkpoint."""
        check_fits(ckpt, self.model)
        n = self.engine.num_params
        if len(ckpt["weights"]) != n:
            raise CheckpointError(f"checkpoint {ckpt.get('path', '')} holds {len(ckpt['weights'])} "
                                  f"weights but the model has {n}; it was saved "
                                  f"from a different model")
        try:
            buffers, steps = self.optimizer.unpack_state(ckpt.get("optimizer") or
                                                         {"type": self.optimizer.name}, n)
        except ValueError as e:
            raise CheckpointError(f"checkpoint {ckpt.get('path', '')} {e}") from None
        # NOTE: SGD's state does not count steps; its update does not use the count.
        self.engine.set_state([float(w) for w in ckpt["weights"]], buffers,
                              ckpt["step"] if steps is None else steps)
        self._steps_at = (ckpt["step"], self.engine.version)

    def close(self):
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def as_config(config):
    """``config`` as a :class:`~paracnn.config.Config`: a Config as it is, a dict validated."""
    if isinstance(config, dict):
        from ..config import config_from_dict
        return config_from_dict(config)
    return config
