"""A trained model in one call: :func:`load_model` builds the network a checkpoint was trained as.

What ``paracnn plot``, ``predict`` and ``export`` start from, and the way to
ask a trained network about one image from Python, without the trainer::

    from paracnn.trained import load_model
    trained = load_model("runs/lenet/checkpoints/best.json")
    x = trained.input(pixels)                     # 784 uint8 pixels -> the model's floats
    probs = trained.model.probabilities(x)
    grad, logits = trained.model.input_gradient(x)   # saliency of the predicted class
    layers = trained.model.activations(x)         # every layer's output
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .checkpoint import check_fits, load_checkpoint, resolve_checkpoint_path
from .errors import CheckpointError


@dataclass
class TrainedModel:
    """A model with a checkpoint's weights, and what it takes to feed it.

    Attributes:
        model: the built :class:`~paracnn.model.Sequential`, weights loaded.
        config: the :class:`~paracnn.config.Config` it was trained with.
        classes: a name per class (Fashion-MNIST's in full; digits for MNIST).
        table: the 256 floats that pixel values 0..255 become (the run's normalisation).
        path: the checkpoint file.
        epoch, step: where in training the checkpoint was taken.
        metrics: the checkpoint's last epoch record, or None.
    """

    model: object
    config: object
    classes: list
    table: list
    path: str
    epoch: int
    step: int
    metrics: Optional[dict] = None

    def input(self, pixels):
        """uint8 pixels (``C*H*W``, channel-major) as the model's input floats."""
        return [self.table[p] for p in pixels]

    def test_set(self, data_dir=None):
        """The test set the run was evaluated on (``data.test_limit`` applied)."""
        from .data import load_datasets

        data = dict(self.config.data["data"])
        return load_datasets(data, seed=self.config.data["train"]["seed"], data_dir=data_dir).test


def load_model(checkpoint):
    """Build the model a checkpoint was trained as and load its weights.

    Args:
        checkpoint: a checkpoint file, or a run folder (its ``checkpoints/last.json``).

    Raises:
        CheckpointError: the file is missing, damaged, or does not fit its own config.
    """
    from .config import config_from_dict
    from .data import make_table
    from .data.checksums import CLASSES

    path = resolve_checkpoint_path(checkpoint)
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"], name=str(path))
    model = config.build_model()
    check_fits(ckpt, model)
    model.set_weights(ckpt["weights"])
    data = config.data["data"]
    classes = CLASSES.get(data["dataset"]) or [str(c) for c in range(config.num_classes)]
    return TrainedModel(model=model, config=config, classes=list(classes),
                        table=make_table(data["normalize"], data["mean"], data["std"]),
                        path=str(path), epoch=ckpt["epoch"], step=ckpt["step"],
                        metrics=ckpt.get("metrics"))


def run_checkpoint(run_dir, log=print):
    """The checkpoint ``paracnn plot`` reads from a run folder: ``best.json``, else ``last.json``.

    ``best.json`` exists only for runs with a validation split (``data.validation``),
    which chooses it; falling back is said on ``log``.
    """
    folder = Path(run_dir) / "checkpoints"
    best, last = folder / "best.json", folder / "last.json"
    if best.is_file():
        return best
    if last.is_file():
        log(f"{run_dir} has no checkpoints/best.json; using {last} (the weights at the end of "
            f"the last epoch or step run; only a run with a validation split, data.validation, "
            f"keeps a best.json)")
        return last
    raise CheckpointError(f"{run_dir} has neither checkpoints/best.json nor checkpoints/last.json; "
                          f"pass a run folder that paracnn train wrote, or --checkpoint FILE")
