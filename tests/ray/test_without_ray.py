"""What needs no Ray: the missing-extra error and the version check's message."""

import sys

from paracnn.cli import main
from paracnn.parallel import ray_actor

from ..parallel.helpers import REPO


def test_without_ray_the_backend_is_one_line_naming_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    code = main(["train", str(REPO / "configs" / "tiny.yaml"), "--backend", "ray", "--workers", "2",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and 'pip install "paracnn[ray]"' in err, err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_workers_0_with_the_ray_backend_needs_no_ray(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), "--backend", "ray", "--workers", "0",
                 "--set", "train.epochs=1", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0


def test_a_version_mismatch_names_the_node_and_both_versions(monkeypatch):
    monkeypatch.setattr(ray_actor, "distribution_versions",
                        lambda: {"paracnn": "0.1.0", "paracnn-extras": "0.3.0", "other-plugin": "1.0"})
    driver = {"paracnn": "0.1.0", "paracnn-extras": "0.2.0"}
    message = ray_actor.version_mismatch(driver, "10.1.2.3")
    assert "paracnn-extras 0.3.0 on node 10.1.2.3 but 0.2.0 on the driver" in message
    assert "other-plugin 1.0 on node 10.1.2.3 but missing on the driver" in message
    assert "paracnn 0.1.0" not in message
    assert ray_actor.version_mismatch(driver | {"other-plugin": "1.0", "paracnn-extras": "0.3.0"},
                                        "n") is None


def test_resume_takes_the_backend_flags_even_without_a_config(monkeypatch, capsys, tmp_path):
    from paracnn.config import load_config
    from paracnn.train import train

    run = tmp_path / "run"
    train(load_config(REPO / "configs" / "tiny.yaml"), workers=0, run_dir=run, max_steps=3,
          progress=False, log=lambda line: None)  # an unfinished run
    monkeypatch.setitem(sys.modules, "ray", None)
    # (before: --backend was dropped on a resume without CONFIG, and the run trained locally)
    assert main(["train", "--resume", str(run), "--backend", "ray", "--workers", "2",
                 "--no-progress"]) == 2
    assert 'pip install "paracnn[ray]"' in capsys.readouterr().err


def test_evaluate_runs_locally_whatever_backend_the_run_trained_on(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    run = str(tmp_path / "run")
    # --workers 0 needs no Ray, so a run whose config says ray can be made without it
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), "--backend", "ray", "--workers", "0",
                 "--set", "train.epochs=1", "--run-dir", run, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", run, "--workers", "2", "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    assert main(["evaluate", run, "--workers", "2", "--backend", "ray"]) == 2
    assert 'pip install "paracnn[ray]"' in capsys.readouterr().err
