"""``paracnn evaluate CHECKPOINT [--set KEY=VALUE]``: a positional checkpoint, and its config overridden."""

import json

import pytest

from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.errors import ConfigError
from paracnn.train import evaluate, train

from .parallel.helpers import quiet, tiny_dict


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    """A run trained and tested on subsets: 48 of the 96 training images, 8 of the 32 test images."""
    cfg = tiny_dict(epochs=1)
    cfg["data"].update(train_limit=48, test_limit=8)
    run = tmp_path_factory.mktemp("subset") / "run"
    train(config_from_dict(cfg), workers=0, run_dir=run, progress=False, log=quiet)
    return run


def evaluate_json(capsys, *args):
    assert main(["evaluate", *args, "--json", "--workers", "0"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_checkpoint_is_positional_and_the_flag_still_works(subset_run, capsys):
    checkpoint = str(subset_run / "checkpoints" / "last.json")
    positional = evaluate_json(capsys, checkpoint)
    flag = evaluate_json(capsys, "--checkpoint", checkpoint)
    folder = evaluate_json(capsys, str(subset_run))
    assert positional == flag == folder
    assert positional["test"]["samples"] == 8


def test_a_model_trained_on_a_subset_is_evaluated_on_the_full_test_set(subset_run, capsys):
    full = evaluate_json(capsys, str(subset_run), "--set", "data.test_limit=null")
    assert full["test"]["samples"] == 32
    subset = evaluate_json(capsys, str(subset_run))
    assert full["weights_sha256"] == subset["weights_sha256"]
    supports = [[r["support"] for r in rep["test"]["per_class"]] for rep in (full, subset)]
    assert sum(supports[0]) == 32 and sum(supports[1]) == 8


def test_set_reaches_the_evaluation_through_the_api(subset_run):
    out = evaluate(subset_run, workers=0, overrides=["data.test_limit=16"], log=quiet)
    assert out["test"]["samples"] == 16 and sum(map(sum, out["test"]["confusion_matrix"])) == 16


def test_another_dataset_of_the_same_shape_and_classes_is_accepted(subset_run):
    # another synthetic draw of the same shape: a different test set, the same model
    out = evaluate(subset_run, workers=0, overrides=["data.synthetic.test_size=20",
                                                     "data.test_limit=null"], log=quiet)
    assert out["test"]["samples"] == 20


@pytest.mark.parametrize("override, shape", [
    ("data.synthetic.image_shape=[1, 6, 6]", "but this data has (1, 6, 6) images in 4 classes"),
    ("data.synthetic.num_classes=3", "but this data has (1, 8, 8) images in 3 classes"),
    ("data.dataset=mnist", "but this data has (1, 28, 28) images in 10 classes"),
])
def test_an_incompatible_dataset_is_one_clear_error(subset_run, capsys, override, shape):
    assert main(["evaluate", str(subset_run), "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"--set {override}: the model in ")
    assert "takes (1, 8, 8) images in 4 classes" in err[0] and shape in err[0]
    assert err[0].endswith("evaluate on data of the same shape and classes (mnist and "
                           "fashion-mnist fit each other)")


def test_the_model_cannot_be_changed(subset_run):
    with pytest.raises(ConfigError, match="the model comes from the checkpoint"):
        evaluate(subset_run, workers=0, overrides=["model.layers.1.units=20"], log=quiet)


def test_evaluate_without_a_checkpoint_is_one_clear_error(capsys):
    assert main(["evaluate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["paracnn: error: evaluate needs a CHECKPOINT: a checkpoint file or a run "
                   "folder, e.g. paracnn evaluate runs/lenet-20261122-101500"]
