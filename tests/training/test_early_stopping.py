"""best.json on the validation split only, and train.early_stopping, end to end and by rule."""

import json
import os

import pytest

import paracnn.training.step
from paracnn.checkpoint import load_checkpoint
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.training.early_stopping import BestEpoch
from paracnn.errors import ConfigError
from paracnn.train import train, weights_hash

from ..parallel.helpers import quiet, tiny_dict


def _no_validation(**train_cfg):
    cfg = tiny_dict(**train_cfg)
    cfg["data"]["validation"] = 0.0
    return cfg


def _rising(**early):
    """A large constant lr on the tiny net: the validation loss falls once, then rises.

    Early stopping on val_loss with patience 2, updated with ``early``.
    """
    cfg = tiny_dict(epochs=10, lr=1.0, schedule="constant")
    cfg["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 2, **early}
    return cfg


def _expected_stop(history, metric, patience, min_delta=0.0, higher=False):
    """(stop epoch, best epoch, best value) by Keras's rule, written out independently."""
    best, best_epoch = None, None
    for r in history:
        v = r[metric]
        if best is None or (v > best + min_delta if higher else v < best - min_delta):
            best, best_epoch = v, r["epoch"]
        elif r["epoch"] - best_epoch >= patience:
            return r["epoch"], best_epoch, best
    return None, best_epoch, best


def _events(run_dir):
    lines = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    return [r for r in lines if "event" in r], [r for r in lines if "event" not in r]


# -- no validation split: no best.json ---------------------------------------------------

def test_without_a_validation_split_no_best_json_is_written_and_that_is_said_once(tmp_path):
    said = []
    result = train(config_from_dict(_no_validation(epochs=2)), workers=0, run_dir=tmp_path / "run",
                   progress=False, log=said.append)
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["last.json"]
    assert result["best"] is None and load_checkpoint(tmp_path / "run/checkpoints/last.json")["best"] is None
    told = [line for line in said if "no validation split" in line]
    assert len(told) == 1 and "best.json" in told[0] and "data.validation" in told[0]
    assert said.index(told[0]) == 1  # right after the header, before the first epoch


def test_readers_of_a_run_without_best_json_fall_back_to_last_json(tmp_path, capsys):
    from paracnn.trained import load_model, run_checkpoint

    run = tmp_path / "run"
    train(config_from_dict(_no_validation(epochs=1)), workers=0, run_dir=run, progress=False, log=quiet)
    assert main(["evaluate", str(run)]) == 0  # a run folder means its last.json
    assert f"checkpoint {run / 'checkpoints' / 'last.json'}" in capsys.readouterr().out
    assert load_model(run).path.endswith("last.json")
    said = []
    assert run_checkpoint(run, said.append) == run / "checkpoints" / "last.json"  # plot, report
    assert "no checkpoints/best.json; using" in said[0]


# -- best.json follows the validation split ----------------------------------------------

def _scripted(monkeypatch, scores):
    """Make the evaluations report ``scores[split][epoch]`` as their accuracy (loss = 1 - accuracy)."""
    real = paracnn.training.step.Trainer.evaluate
    calls = {"val": 0, "test": 0}

    def evaluate(self, split, should_stop=None):
        report = real(self, split, should_stop=should_stop)
        value = scores[split][calls[split]]
        calls[split] += 1
        return dict(report, accuracy=value, loss=1.0 - value)

    monkeypatch.setattr(paracnn.training.step.Trainer, "evaluate", evaluate)


def test_best_json_follows_validation_where_the_test_set_disagrees(tmp_path, monkeypatch):
    # the test set would pick epoch 1, the validation split picks epoch 2
    _scripted(monkeypatch, {"val": [0.50, 0.75, 0.60], "test": [0.90, 0.40, 0.30]})
    cfg = tiny_dict(epochs=3, schedule="constant")
    said = []
    result = train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "run", progress=False,
                   log=said.append)
    best = load_checkpoint(tmp_path / "run/checkpoints/best.json")
    assert best["best"] == {"metric": "val_accuracy", "value": 0.75, "epoch": 2} == result["best"]
    assert best["epoch"] == 2
    monkeypatch.undo()  # the scores never steer training: two plain epochs reach best.json's weights
    two = train(config_from_dict(tiny_dict(epochs=2, schedule="constant")), workers=0,
                run_dir=tmp_path / "two", progress=False, log=quiet)
    assert weights_hash(best["weights"]) == two["weights_sha256"]
    assert any(line.startswith("best epoch 2 by val_accuracy 0.7500") for line in said)


def test_best_json_by_val_loss_when_early_stopping_monitors_it(tmp_path, monkeypatch):
    # accuracy would pick epoch 3; the loss, 1 - accuracy here, too; min_delta makes epoch 3's
    # gain too small to count, so epoch 2 stays best
    _scripted(monkeypatch, {"val": [0.50, 0.70, 0.705], "test": [0.5, 0.5, 0.5]})
    cfg = tiny_dict(epochs=3, schedule="constant")
    cfg["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 5, "min_delta": 0.01}
    result = train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "run", progress=False,
                   log=quiet)
    assert result["best"]["metric"] == "val_loss" and result["best"]["epoch"] == 2
    assert result["best"]["value"] == pytest.approx(0.3)
    assert not result["stopped_early"] and len(result["history"]) == 3


# -- early stopping on a rising validation loss -----------------------------------------

@pytest.fixture(scope="module")
def rising(tmp_path_factory):
    run = tmp_path_factory.mktemp("rising") / "run"
    said = []
    result = train(config_from_dict(_rising()), workers=0, run_dir=run, progress=False,
                   log=said.append)
    return run, result, said


def test_early_stopping_stops_at_the_epoch_the_rule_says(rising):
    run, result, said = rising
    history = result["history"]
    stop, best_epoch, best_value = _expected_stop(history, "val_loss", patience=2)
    assert result["stopped_early"] and stop is not None and len(history) < 10
    assert len(history) == stop and result["epochs"] == stop
    assert history[-1]["val_loss"] > best_value  # it rose
    assert result["best"] == {"metric": "val_loss", "value": best_value, "epoch": best_epoch}
    events, records = _events(run)
    assert records == history
    assert events == [{"event": "early_stop", "epoch": stop, "monitor": "val_loss", "best": best_value,
                       "best_epoch": best_epoch, "patience": 2, "min_delta": 0.0}]
    lines = [line for line in said if line.startswith("early stopping:")]
    assert len(lines) == 1 and f"after epoch {stop} of 10" in lines[0]


def test_early_stopping_keeps_the_best_epoch_in_best_json(rising, tmp_path):
    run, result, _ = rising
    best = load_checkpoint(run / "checkpoints" / "best.json")
    assert best["best"] == result["best"] and best["epoch"] == result["best"]["epoch"]
    cfg = _rising()
    cfg["train"].update(epochs=result["best"]["epoch"])
    del cfg["train"]["early_stopping"]
    shorter = train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "short", progress=False,
                    log=quiet)
    assert weights_hash(best["weights"]) == shorter["weights_sha256"]


def test_a_resumed_run_keeps_the_patience_count(rising, tmp_path):
    run, result, _ = rising
    stop, best_epoch = result["epochs"], result["best"]["epoch"]
    # stop at the end of the epoch after the best one: one epoch of patience used up
    steps = (best_epoch + 1) * result["history"][0]["steps"]
    first = train(config_from_dict(_rising()), workers=0, run_dir=tmp_path / "r", progress=False,
                  log=quiet, max_steps=steps)
    assert first["stopped"] and not first["stopped_early"]
    assert load_checkpoint(tmp_path / "r/checkpoints/last.json")["best"]["epoch"] == best_epoch
    resumed = train(None, resume=tmp_path / "r", workers=2, progress=False, log=quiet)
    assert resumed["stopped_early"] and resumed["epochs"] == stop
    assert [_scores(r) for r in resumed["history"]] == [_scores(r) for r in result["history"]]
    assert resumed["weights_sha256"] == result["weights_sha256"]
    events, _ = _events(tmp_path / "r")
    assert [e["epoch"] for e in events] == [stop]


def _scores(record):
    """A metrics record without what measures time, memory or workers (which differ by run)."""
    return {k: v for k, v in record.items() if not k.endswith(("seconds", "_mb", "_percent"))
            and k not in ("samples_per_second", "workers")}


def test_resuming_a_run_that_stopped_early_trains_nothing_and_says_why(rising):
    run, result, _ = rising
    said = []
    again = train(None, resume=run, workers=0, progress=False, log=said.append)
    assert again["finished_before"] and again["stopped_early"]
    assert again["weights_sha256"] == result["weights_sha256"] and again["steps"] == result["steps"]
    assert "stopped early" in said[0] and "train.early_stopping.patience" in said[0]


def test_more_patience_on_resume_trains_on(rising, tmp_path):
    import shutil

    run, result, _ = rising
    copy = tmp_path / "more"
    shutil.copytree(run, copy)
    cfg = _rising(patience=50)
    cfg["train"]["epochs"] = result["epochs"] + 1
    more = train(config_from_dict(cfg), resume=copy, workers=0, progress=False, log=quiet)
    assert more["epochs"] == result["epochs"] + 1 and not more["stopped_early"]
    events, records = _events(copy)
    assert events == [] and len(records) == result["epochs"] + 1


def test_the_cli_exits_0_after_an_early_stop(tmp_path, capsys):
    path = tmp_path / "rising.yaml"
    path.write_text(json.dumps(_rising()))  # JSON is YAML
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress",
                 "--workers", "0"]) == 0
    assert "early stopping: val_loss has not improved" in capsys.readouterr().out


# -- the rule and the config --------------------------------------------------------------

def test_best_epoch_counts_epochs_without_an_improvement_of_more_than_min_delta():
    rule = {"early_stopping": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.05}}
    best = BestEpoch(rule, has_validation=True)
    seen = [best.update({"epoch": e, "val_accuracy": v}) for e, v in
            enumerate([0.5, 0.6, 0.64, 0.63], start=1)]
    assert seen == [True, True, False, False]  # 0.64 is better, but not by more than 0.05
    assert best.record == {"metric": "val_accuracy", "value": 0.6, "epoch": 2}
    assert best.should_stop and best.waited == 2
    resumed = BestEpoch(rule, True, {"metric": "val_accuracy", "value": 0.6, "epoch": 2}, epochs_done=3)
    assert resumed.waited == 1 and not resumed.should_stop
    stale = BestEpoch(rule, True, {"metric": "test_accuracy", "value": 0.9, "epoch": 1}, epochs_done=3)
    assert stale.record is None  # chosen on the test set: not carried over


def _load(tmp_path, text):
    from paracnn.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path)


BASE = """\
model:
  input_shape: [1, 8, 8]
  layers: [{type: flatten}, {type: dense, units: 4}]
data:
  dataset: synthetic
  synthetic: {train_size: 32, test_size: 8, image_shape: [1, 8, 8], num_classes: 4}
  validation: %s
train:
  early_stopping: %s
"""


def test_the_config_fills_in_the_defaults(tmp_path):
    cfg = _load(tmp_path, BASE % ("0.25", "{patience: 3}"))
    assert cfg.data["train"]["early_stopping"] == {"monitor": "val_loss", "patience": 3, "min_delta": 0.0}
    assert _load(tmp_path, BASE % ("0", "null")).data["train"]["early_stopping"] is None


@pytest.mark.parametrize("validation, value, message, line", [
    ("0", "{patience: 2}", "data.validation is 0; hold some training images out", 9),
    ("0.25", "{monitor: test_loss}", "must be one of val_loss, val_accuracy", 9),
    ("0.25", "{patience: -1}", "patience", 9),
    ("0.25", "{patiense: 2}", "did you mean 'patience'", 9),
    ("0.25", "2", "must be a mapping", 9),
])
def test_bad_early_stopping_is_a_config_error_at_its_line(tmp_path, validation, value, message, line):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, BASE % (validation, value))
    assert message in str(e.value) and f"c.yaml:{line}" in str(e.value)
