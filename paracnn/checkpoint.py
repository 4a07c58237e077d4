"""Checkpoints: one JSON file holding everything needed to continue a run exactly.

Also what a checkpoint says about its run: :func:`resume_config`,
:func:`resolve_checkpoint_path` and :func:`run_dir_of` (:mod:`paracnn.runfolder`
creates run folders and guards one that already holds a run).

Layout (``"schema": 1``)::

    {"schema": 1, "paracnn_version": "0.1.0",
     "config": {...the resolved config...},
     "epoch": 2,            # completed epochs, or the epoch in progress when mid-epoch
     "step": 1876,          # optimiser steps taken in the whole run
     "step_in_epoch": 0,    # steps of `epoch` already taken (0 at an epoch boundary)
     "params": [{"name": "0.weight", "shape": [6, 1, 5, 5]}, ...],   # the vector's tensors
     "weights": [...],      # the flat parameter vector, model order
     "optimizer": {"type": "sgd", "momentum_buffer": [...] | null},
                            # or {"type": "adam" | "adamw", "step": t, "exp_avg": [...] | null,
                            #     "exp_avg_sq": [...] | null}
     "rng": null,           # every random draw derives from (seed, epoch, index)
     "progress": {...},     # running sums of the epoch in progress
     "metrics": {...},      # the last epoch's metrics
     "best": {...}}         # the best epoch so far on the validation split (metric, value,
                            # epoch), to keep best.json consistent; null without one

``params`` names each tensor of the vector in order, as PyTorch's
``nn.Sequential`` of the same layers names it (see
:meth:`~paracnn.model.Sequential.param_layout`), with its shape; loading into
a model checks them (:func:`check_fits`). Checkpoints written before it
existed have no ``params`` and are checked by length only.

Floats are written with ``repr`` (what :mod:`json` does), which round-trips
every float64 exactly, so a resumed run continues bit-identically. Files are
written atomically by :func:`paracnn.files.write_atomic`: a temporary file in the
same folder, flushed and fsynced, then ``os.replace`` and an fsync of the folder.
"""

import json
import math
import os
from pathlib import Path

from . import __version__
from .errors import CheckpointError
from .files import write_atomic
from .limits import MAX_CHECKPOINT_BYTES
from .layer import format_shape

SCHEMA = 1
#: train keys that may differ between a checkpoint's config and the config resuming it.
RESUME_FREE = ("workers", "start_method", "eval_batch", "epochs", "max_params", "max_worker_failures",
               "worker_timeout", "checkpoint_every", "log_every", "backend", "ray_address",
               "early_stopping")
#: data keys that only say where the files are.
DATA_FREE = ("dir", "download", "mirror")


def save_checkpoint(path, *, config, weights, optimizer, epoch, step, step_in_epoch=0,
                    metrics=None, progress=None, best=None, rng=None, params=None):
    """Write a checkpoint to ``path`` atomically and return the path.

    ``params`` is the model's ``param_layout()``: ``[(name, shape), ...]``.
    """
    state = {
        "schema": SCHEMA,
        "paracnn_version": __version__,
        "config": config,
        "epoch": int(epoch),
        "step": int(step),
        "step_in_epoch": int(step_in_epoch),
        "params": None if params is None else [{"name": str(name), "shape": [int(n) for n in shape]}
                                               for name, shape in params],
        "weights": [float(w) for w in weights],
        "optimizer": optimizer,
        "rng": rng,
        "progress": progress,
        "metrics": metrics,
        "best": best,
    }
    # NOTE: allow_nan=False keeps the file valid JSON; a diverged run is an error, not a checkpoint.
    try:
        text = json.dumps(state, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise CheckpointError(f"cannot save checkpoint {path}: the weights or metrics contain "
                              f"NaN or infinity (training diverged; lower the learning rate)") from None
    write_atomic(path, text)
    return Path(path)


def load_checkpoint(path, num_params=None):
    """Read and validate a checkpoint; return its dict.

    Raises :class:`~paracnn.errors.CheckpointError` when the file is missing,
    larger than :data:`~paracnn.limits.MAX_CHECKPOINT_BYTES`, not JSON, from a
    newer paracnn, or its weights do not fit ``num_params``. The config's
    ``data.mirror`` is dropped: a checkpoint never chooses where data is downloaded from.
    """
    path = Path(path)
    if path.is_dir():
        path = resolve_checkpoint_path(path)
    try:
        text = _read_bounded(path)
    except FileNotFoundError:
        hint = ("; only a run with a validation split (data.validation) keeps a best.json: use "
                f"{path.with_name('last.json')}" if path.name == "best.json" else "")
        raise CheckpointError(f"checkpoint {path} does not exist{hint}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"checkpoint {path} is not text (not UTF-8); it is damaged or not a "
                              f"paracnn checkpoint") from None
    try:
        state = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path} is not valid JSON ({e}); "
                              f"it may be truncated or not a paracnn checkpoint") from None
    if not isinstance(state, dict) or "schema" not in state:
        raise CheckpointError(f"checkpoint {path} has no 'schema' field; it is not a paracnn checkpoint")
    schema = state["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise CheckpointError(f"checkpoint {path} has schema {schema!r}; expected an integer")
    if schema > SCHEMA:
        raise CheckpointError(f"checkpoint {path} has schema {schema}, newer than this paracnn "
                              f"{__version__} reads (schema {SCHEMA}); upgrade paracnn")
    if schema < 1:
        raise CheckpointError(f"checkpoint {path} has unknown schema {schema}")
    for key, kind in (("config", dict), ("weights", list), ("epoch", int), ("step", int)):
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"checkpoint {path} is missing '{key}' "
                                  f"(expected {kind.__name__}); it is damaged or not a paracnn checkpoint")
    _check_fields(state, path)
    weights = state["weights"]
    if num_params is not None and len(weights) != num_params:
        raise CheckpointError(f"checkpoint {path} holds {len(weights)} weights but the model has "
                              f"{num_params}; it was saved from a different model")
    check_finite(weights, f"checkpoint {path} weights")
    _check_params(state, path)
    _check_optimizer(state.get("optimizer") or {}, len(weights), path, state["step"])
    data = state["config"].get("data")
    if isinstance(data, dict) and data.get("mirror") is not None:
        # NOTE: a URL that came inside a file is not one the user chose to fetch from: a resumed
        # or evaluated run downloads from --set data.mirror, PARACNN_MIRROR or the default.
        data["mirror"] = None
    state["path"] = str(path)
    return state


def _read_bounded(path):
    """The checkpoint's text, refused by its size and its first byte before it is read whole."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"checkpoint {path} is {size:,} bytes, more than paracnn's limit of "
                                  f"{MAX_CHECKPOINT_BYTES:,} for a checkpoint; it is not a paracnn "
                                  f"checkpoint, or a model far larger than paracnn trains")
        head = f.read(64)
        first = head.lstrip()[:1]
        if first and first not in b'{["-0123456789tfn':  # NOTE: what a JSON text may start with
            if not (b" " <= first <= b"~"):
                raise UnicodeDecodeError("utf-8", head, 0, 1, "not text")
            raise CheckpointError(f"checkpoint {path} is not valid JSON (it starts with "
                                  f"{first.decode()!r}); it may be damaged or not a paracnn checkpoint")
        return (head + f.read()).decode("utf-8")


def _check_optimizer(opt, num_params, path, step):
    """Each per-element buffer of the optimizer state (every key but ``type`` and ``step``) is
    null or ``num_params`` finite numbers; ``step``, when present, the checkpoint's ``step``."""
    for name, buf in opt.items():
        # NOTE: "a momentum buffer of the wrong length", as SGD's checkpoints have always said
        what = "a momentum buffer" if name == "momentum_buffer" else f"an optimizer {name}"
        if name == "step" and (isinstance(buf, bool) or not isinstance(buf, int) or buf < 0):
            raise CheckpointError(f"checkpoint {path} has optimizer step {_short(buf)} (expected a "
                                  f"whole number >= 0); it is damaged")
        if name == "step" and buf != step:  # NOTE: Adam's bias correction would silently differ
            raise CheckpointError(f"checkpoint {path} has optimizer step {buf} but step {step}; "
                                  f"they are always equal, so it is damaged")
        if name in ("type", "step") or buf is None:
            continue
        if not isinstance(buf, list) or len(buf) != num_params:
            raise CheckpointError(f"checkpoint {path} has {what} of the wrong length "
                                  f"({len(buf) if isinstance(buf, list) else type(buf).__name__}, "
                                  f"expected {num_params})")
        check_finite(buf, f"checkpoint {path} {what.split(' ', 1)[1]}")


def check_finite(values, what):
    for i, v in enumerate(values):
        if not finite_number(v):
            raise CheckpointError(f"{what}[{i}] is {_short(v)}; expected a finite number")


def whole_number(v):
    """An ``int`` (not a ``bool``), as JSON counters (epoch, step) must be."""
    return isinstance(v, int) and not isinstance(v, bool)


def finite_number(v):
    """An ``int`` or ``float`` (not a ``bool``) that is finite, as JSON metrics and weights must be."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_fields(state, path):
    """The counters and the small mappings a resumed run relies on have the right types."""
    def damaged(what):
        return CheckpointError(f"checkpoint {path} has {what}; it is damaged or not a paracnn checkpoint")

    for key in ("epoch", "step", "step_in_epoch"):
        v = state.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise damaged(f"{key} {_short(v)} (expected a whole number >= 0)")
    for key in ("optimizer", "progress", "metrics", "best"):
        if state.get(key) is not None and not isinstance(state[key], dict):
            raise damaged(f"{key} {_short(state[key])} (expected a mapping or null)")
    for key, v in (state.get("progress") or {}).items():
        if v is not None and not finite_number(v):
            raise damaged(f"progress.{key} {_short(v)} (expected a finite number)")
    best = state.get("best")
    if best is not None and not (isinstance(best.get("metric"), str) and finite_number(best.get("value"))):
        raise damaged(f"best {_short(best)} (expected metric: name and value: number)")


def _check_params(state, path):
    """``params``, when present, is a list of named shapes that covers exactly the weights."""
    params = state.get("params")
    if params is None:
        return
    total = 0
    for entry in params if isinstance(params, list) else [params]:
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(shape, list)
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise CheckpointError(f"checkpoint {path} has params entry {_short(entry)} (expected "
                                  f"name: text and shape: a list of whole numbers); it is damaged")
        total += math.prod(shape)
    if total != len(state["weights"]):
        raise CheckpointError(f"checkpoint {path} lists tensors of {total} values in params but holds "
                              f"{len(state['weights'])} weights; it is damaged")


def check_fits(ckpt, model):
    """Raise :class:`CheckpointError` unless ``ckpt`` was saved from a model laid out like ``model``.

    Compares every tensor's name and shape and names the first that differs;
    a checkpoint without ``params`` (written before they were recorded) is
    checked by its number of weights only.
    """
    path = ckpt.get("path", "")
    advice = "load it with the config it was trained with"
    saved = ckpt.get("params")
    if saved is None:
        n = model.num_params()
        if len(ckpt["weights"]) != n:
            raise CheckpointError(f"checkpoint {path} holds {len(ckpt['weights'])} weights but the "
                                  f"model has {n}; it was saved from a different model; {advice}")
        return
    layout = model.param_layout()
    for j in range(max(len(saved), len(layout))):
        theirs = (saved[j]["name"], tuple(saved[j]["shape"])) if j < len(saved) else None
        ours = layout[j] if j < len(layout) else None
        if theirs == ours:
            continue
        if theirs is None:
            what = f"the model's tensor {ours[0]} {format_shape(ours[1])} is not in the checkpoint"
        elif ours is None:
            what = f"the checkpoint's tensor {theirs[0]} {format_shape(theirs[1])} is not in the model"
        elif theirs[0] == ours[0]:
            what = (f"tensor {ours[0]} is {format_shape(theirs[1])} in the checkpoint but {format_shape(ours[1])} "
                    f"in the model")
        else:
            what = (f"tensor #{j} is {theirs[0]} {format_shape(theirs[1])} in the checkpoint but {ours[0]} "
                    f"{format_shape(ours[1])} in the model")
        raise CheckpointError(f"checkpoint {path} was saved from a different model: {what}; {advice}")


def resolve_checkpoint_path(path):
    """A checkpoint file from a run folder (``RUN/checkpoints/last.json``) or a file path."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.json", path / "last.json"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path} is a folder without checkpoints/last.json; "
                              f"pass a run folder or a checkpoint file")
    return path


def run_dir_of(checkpoint_path):
    """The run folder a checkpoint belongs to (``RUN`` for ``RUN/checkpoints/x.json``), or None."""
    p = Path(checkpoint_path).resolve()
    return p.parent.parent if p.parent.name == "checkpoints" else None


# -- runs -----------------------------------------------------------------------------

def resume_config(config, ckpt):
    """The Config to resume with: the checkpoint's, with only harmless keys taken from ``config``.

    ``config`` (a Config, a dict or None) may change ``train.epochs``,
    ``workers``, ``start_method``, ``eval_batch`` and where the data comes from;
    anything else that differs raises :class:`CheckpointError` naming the key,
    because the resumed run could not reach the uninterrupted run's weights.
    """
    from .config import config_from_dict

    # NOTE: validated, so keys added to the schema since the checkpoint was written compare as
    # their defaults instead of refusing the resume.
    saved = config_from_dict(ckpt["config"], name=ckpt["path"]).data
    if config is None:
        return config_from_dict(saved, name=ckpt["path"])
    given = config.data if hasattr(config, "data") else config_from_dict(config).data
    for section, free in (("model", ()), ("data", DATA_FREE), ("train", RESUME_FREE)):
        a, b = saved.get(section, {}), given.get(section, {})
        for key in sorted(set(a) | set(b)):
            if key not in free and a.get(key) != b.get(key):
                raise CheckpointError(
                    f"{section}.{key} is {b.get(key)!r} in the config but {a.get(key)!r} in "
                    f"checkpoint {ckpt['path']}; resuming must not change it (only "
                    f"{', '.join('train.' + k for k in RESUME_FREE)} may change)")
    merged = {**saved, "data": {**saved["data"], **{k: given["data"][k] for k in DATA_FREE
                                                     if k in given["data"]}},
              "train": {**saved["train"], **{k: given["train"][k] for k in RESUME_FREE}}}
    return config_from_dict(merged, name=getattr(config, "path", ckpt["path"]))
