"""Worker counts: ``--workers auto`` and the one-line warnings about too many workers."""

import pytest

from paracnn import workers as workers_module
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.errors import ConfigError
from paracnn.train import evaluate, train
from paracnn.workers import auto_workers, evaluation_chunks, tasks_per_step, worker_warnings

from .parallel.helpers import REPO, quiet, tiny_dict


def cpus(usable):
    return {"usable": usable, "affinity": usable, "cgroup_quota": None, "cgroup_file": None,
            "cpu_count": usable}


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has ``machine(n)`` usable CPUs."""
    def pretend(n):
        monkeypatch.setattr(workers_module, "usable_cpus", lambda: cpus(n))
    return pretend


def test_auto_is_the_smaller_of_usable_cpus_and_micro_batches_per_step():
    train_cfg = config_from_dict(tiny_dict(micro_batch=4)).data["train"]  # batch 16: 4 micro-batches
    assert tasks_per_step(train_cfg) == 4
    assert auto_workers(train_cfg, cpus(2)) == 2
    assert auto_workers(train_cfg, cpus(64)) == 4
    assert auto_workers(train_cfg, cpus(0.5)) == 1  # a cgroup quota below one CPU still gets one


def test_auto_is_accepted_in_the_config_and_builds_the_model():
    config = config_from_dict(tiny_dict(workers="auto"))
    assert config.data["train"]["workers"] == "auto"
    assert config.build_model().num_params() > 0  # the memory check sizes for the resolved count


def test_a_worker_count_that_is_neither_a_number_nor_auto_is_one_clear_error():
    with pytest.raises(ConfigError, match="train.workers must be a number of worker processes or "
                                          "auto, got 'many'"):
        config_from_dict(tiny_dict(workers="many"))


def test_train_accepts_workers_auto_on_the_command_line(tmp_path, machine, capsys):
    machine(2)
    config = tmp_path / "tiny.yaml"
    config.write_text((REPO / "configs/tiny.yaml").read_text())
    assert main(["train", str(config), "--workers", "auto", "--run-dir", str(tmp_path / "run"),
                 "--no-progress", "--set", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert ", workers 2" in out and "warning" not in out
    assert main(["train", str(config), "--workers", "many"]) == 2
    assert capsys.readouterr().err == ("--workers many: train.workers must be a number of worker "
                                       "processes or auto, got 'many'\n")


def test_train_warns_once_about_oversubscription_and_idle_workers(tmp_path, machine):
    machine(1)
    lines = []
    # batch 16 in micro-batches of 8: 2 per step, so a third worker has nothing to do
    result = train(config_from_dict(tiny_dict(micro_batch=8)), workers=3, run_dir=tmp_path / "run",
                   progress=False, log=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert result["workers"] == 3 and len(warnings) == 2, warnings
    assert warnings[0].startswith("warning: 3 workers exceed the 1 usable CPUs")
    assert "use --workers auto (1 here)" in warnings[0]
    assert warnings[1].startswith("warning: 3 workers but a step has only 2 micro-batches, so 1 "
                                  "of them sits idle; use --workers auto (1 here)")


def test_train_with_auto_starts_the_resolved_count_without_warnings(tmp_path, machine):
    machine(64)
    lines = []
    result = train(config_from_dict(tiny_dict(micro_batch=8, workers="auto", epochs=1)),
                   run_dir=tmp_path / "run", progress=False, log=lines.append)
    assert result["workers"] == 2  # two micro-batches per step, however many CPUs
    assert not [line for line in lines if line.startswith("warning:")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A finished run whose config says ``train.workers: 3``."""
    run = tmp_path_factory.mktemp("eval") / "run"
    train(config_from_dict(tiny_dict(epochs=1, workers=3)), workers=0, run_dir=run, progress=False,
          log=quiet)
    return run / "checkpoints" / "last.json"


def test_evaluate_defaults_to_auto_not_the_checkpoints_count(checkpoint, machine, monkeypatch):
    machine(1)
    import paracnn.train as train_module

    started = []

    class Spy(train_module.Trainer):
        def __init__(self, config, **kwargs):
            started.append(kwargs["workers"])
            super().__init__(config, **kwargs)

    monkeypatch.setattr(train_module, "Trainer", Spy)
    lines = []
    out = evaluate(checkpoint, log=lines.append)
    assert started == [1] and out["test"]["samples"] == 32
    assert not [line for line in lines if line.startswith("warning:")]


def test_evaluate_warns_about_idle_workers_and_oversubscription(checkpoint, machine):
    machine(2)
    lines = []
    # eval_batch 16: the 24-sample validation set is 2 chunks, the 32-sample test set 2 chunks
    evaluate(checkpoint, workers=3, overrides=["train.eval_batch=16"], log=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("warning: 3 workers exceed the 2 usable CPUs")
    assert warnings[1] == ("warning: 3 workers but the test set splits into only 2 evaluation "
                           "chunks, so 1 of them sits idle; use --workers 2 or a smaller "
                           "train.eval_batch")


def test_a_bad_evaluate_worker_count_cites_the_flag(checkpoint, capsys):
    assert main(["evaluate", str(checkpoint), "--workers", "-3"]) == 2
    assert capsys.readouterr().err == "--workers -3: train.workers must be >= 0, got -3\n"


def test_evaluation_chunks_follow_the_engines_rule():
    assert evaluation_chunks(10_000) == 40  # chunks of at most 256
    assert evaluation_chunks(32) == 16  # a sixteenth of the split
    assert evaluation_chunks(3) == 3
    assert evaluation_chunks(32, eval_batch=16) == 2


def test_no_warnings_in_process():
    train_cfg = config_from_dict(tiny_dict()).data["train"]
    assert worker_warnings(0, train_cfg, cpus(1)) == []
    assert worker_warnings(1, train_cfg, cpus(1)) == []


@pytest.fixture
def no_profiling(monkeypatch):
    """profile must be refused before it measures anything: measuring fails the test."""
    import paracnn.profiling

    def measured(*args, **kwargs):
        raise AssertionError("profile started measuring")
    monkeypatch.setattr(paracnn.profiling, "profile", measured)


@pytest.mark.parametrize("counts", ["100000", "1,2,100000", "1025"])
def test_profile_refuses_worker_counts_past_the_limit_before_starting_any(counts, no_profiling, capsys):
    from paracnn.limits import MAX_WORKERS
    assert main(["profile", str(REPO / "configs" / "tiny.yaml"), "--workers", counts]) == 2
    biggest = max(int(c) for c in counts.split(","))
    assert capsys.readouterr().err == (
        f"paracnn: error: --workers asks for {biggest:,} worker processes, more than paracnn's limit "
        f"of {MAX_WORKERS}; each worker is a Python process, so give counts up to the usable CPUs "
        f"(--workers auto picks them)\n")


def test_train_and_profile_share_the_worker_limit(capsys):
    from paracnn.limits import MAX_WORKERS
    assert main(["summary", str(REPO / "configs" / "tiny.yaml"), "--set",
                 f"train.workers={MAX_WORKERS + 1}"]) == 2
    assert f"train.workers must be <= {MAX_WORKERS}, got {MAX_WORKERS + 1}" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_profile_refuses_an_output_in_a_missing_folder_before_measuring(flag, tmp_path, no_profiling, capsys):
    out = tmp_path / "missing" / "p.out"
    assert main(["profile", str(REPO / "configs" / "tiny.yaml"), "--workers", "1", flag, str(out)]) == 2
    assert capsys.readouterr().err == (f"paracnn: error: cannot write {out}: the folder {out.parent} does "
                                       f"not exist; create it first, or choose another path\n")
