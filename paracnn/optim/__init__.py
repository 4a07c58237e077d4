"""The optimisers (SGD, Adam, AdamW) and learning-rate schedules, in increasing complexity.

Everything works on flat lists of floats (the model's parameter vector) with
C-level ``map``/``operator`` loops: the update touches every parameter every
step, so it must not be a per-element Python loop.

Every optimiser has one pure, element-wise :meth:`~paracnn.optim.base.Optimizer.update`
over its named per-element buffers (:attr:`~paracnn.optim.base.Optimizer.buffer_names`:
none for plain SGD, ``momentum_buffer`` for SGD with momentum, ``exp_avg`` and
``exp_avg_sq`` for Adam and AdamW). The training engine
(:mod:`paracnn.parallel.engine`) keeps the buffers in shared memory and calls
``update`` slice by slice in the workers; :meth:`~paracnn.optim.base.Optimizer.step`
calls it over the whole vector, keeping the buffers in the object. Both save
and restore their state with the same ``pack_state``/``unpack_state``.

- :mod:`~paracnn.optim.sgd`: ``torch.optim.SGD``'s update.
- :mod:`~paracnn.optim.adam`: ``torch.optim.Adam`` and ``AdamW``'s.
- :mod:`~paracnn.optim.schedule`: the schedules and the warm-up.
- :mod:`~paracnn.optim.rules`: the rule of each ``train:`` value, which the
  config schema applies too.
"""

from .adam import Adam, AdamW
from .base import Optimizer, clip_coef, clip_grad_norm, grad_norm
from .rules import (DEFAULTS, OPTIMIZERS, RULES, check_betas, check_combination, unused_keys,
                    unused_settings)
from .schedule import SCHEDULES, Schedule
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "Schedule", "make_optimizer", "clip_grad_norm",
           "grad_norm", "clip_coef", "OPTIMIZERS", "SCHEDULES", "check_betas", "unused_keys",
           "unused_settings"]

#: the class of each ``train.optimizer`` name.
CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(train_cfg):
    """The optimiser named by ``train.optimizer``, configured from ``train`` (missing keys: defaults).

    Raises ``ConfigError`` whose key names the value at fault, by the same
    rules as the config schema (:mod:`paracnn.optim.rules`).
    """
    cfg = {key: train_cfg.get(key, default) for key, default in DEFAULTS.items()}
    for key, rule in RULES.items():
        cfg[key] = rule(key, cfg[key])
    check_combination(cfg)
    if cfg["optimizer"] == "sgd":
        return SGD(lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                   weight_decay=cfg["weight_decay"])
    return CLASSES[cfg["optimizer"]](lr=cfg["lr"], betas=cfg["betas"], eps=cfg["eps"],
                                     weight_decay=cfg["weight_decay"])
