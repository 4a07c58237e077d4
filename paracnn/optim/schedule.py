"""Learning-rate schedules (``train.schedule``) and the linear warm-up (``train.warmup_steps``).

- ``constant``: ``lr`` throughout.
- ``{type: step, step_size: S, gamma: G}``: ``lr * G ** (epoch // S)``, counted
  in **epochs** (like ``torch.optim.lr_scheduler.StepLR`` stepped per epoch).
- ``{type: cosine, min_lr: M}``: annealed per **step** over all the steps of the
  run, ``M + (lr - M) * (1 + cos(pi * step / total_steps)) / 2``.

``warmup_steps: W`` multiplies any of them by ``(step + 1) / W`` for the first
``W`` global steps (0-based ``step``): a linear ramp from ``lr / W`` that
reaches the schedule's own rate at step ``W - 1``.

:data:`SCHEDULES`, :data:`SCHEDULE_RULES` and :func:`check_schedule` are the
rules the config schema applies too.
"""

import math
from functools import partial

from ..errors import ConfigError
from ..layer import check_float, check_int

#: each kind with the defaults of its keys.
SCHEDULES = {"constant": {}, "step": {"step_size": 1, "gamma": 0.1}, "cosine": {"min_lr": 0.0}}

SCHEDULE_RULES = {
    "step_size": partial(check_int, minimum=1),
    "gamma": partial(check_float, low=0.0, high=1.0, low_open=True),
    "min_lr": partial(check_float, low=0.0),
}

WARMUP_RULE = partial(check_int, minimum=0)


def check_schedule(spec, lr, name="schedule", lr_name="lr"):
    """The resolved mapping of ``spec`` (a kind's name or a mapping with ``type``), its values checked.

    Raises ``ConfigError`` whose key is the schedule's key within ``spec``
    (``"gamma"``), or None for the schedule as a whole. ``name`` and ``lr_name``
    name the schedule and the rate in messages (the schema passes ``train.schedule``).
    """
    spec = {"type": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, dict) or spec.get("type") not in SCHEDULES:
        raise ConfigError(f"{name} must be one of {', '.join(SCHEDULES)} (a name or a mapping with "
                          f"'type:'), got {spec!r}")
    kind = spec["type"]
    extra = set(spec) - {"type", *SCHEDULES[kind]}
    if extra:
        raise ConfigError(f"{name}: a {kind} schedule does not take {', '.join(sorted(extra))}")
    out = {"type": kind, **SCHEDULES[kind], **spec}
    for key, rule in SCHEDULE_RULES.items():
        if key in out:
            try:
                out[key] = rule(f"{name}.{key}", out[key])
            except ConfigError as e:
                raise ConfigError(e.message, key=key) from None
    if kind == "cosine" and out["min_lr"] >= lr:
        raise ConfigError(f"{name}.min_lr must be below {lr_name} ({lr}), got {out['min_lr']}",
                          key="min_lr")
    return out


class Schedule:
    """Learning rate as a function of (epoch, global step); see the module docstring.

    Args:
        spec: ``"constant"`` or a mapping with ``type`` (``step`` or ``cosine``); None: constant.
        lr: the base learning rate.
        total_steps: the number of optimiser steps in the whole run (cosine).
        warmup_steps: ramp the rate up linearly over this many first steps (0: none).
    """

    def __init__(self, spec, lr, total_steps, warmup_steps=0):
        self.lr = float(lr)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = WARMUP_RULE("warmup_steps", warmup_steps)
        self.spec = check_schedule("constant" if spec is None else spec, self.lr)
        self.type = self.spec["type"]

    def __call__(self, epoch, step):
        """The rate for global ``step`` (0-based) inside ``epoch`` (0-based)."""
        rate = self._rate(epoch, step)
        if step < self.warmup_steps:
            return rate * (step + 1) / self.warmup_steps
        return rate

    def _rate(self, epoch, step):
        spec = self.spec
        if self.type == "step":
            return self.lr * spec["gamma"] ** (epoch // spec["step_size"])
        if self.type == "cosine":
            t = min(step, self.total_steps) / self.total_steps
            return spec["min_lr"] + (self.lr - spec["min_lr"]) * (1.0 + math.cos(math.pi * t)) / 2.0
        return self.lr
