"""What a run shows while it trains, and ``RUN/steps.jsonl``."""

import json
import re

import pytest
import yaml

from paracnn import monitor, progress
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.progress import Progress
from paracnn.train import train

from .parallel.helpers import quiet, tiny_config, tiny_dict

LINE = re.compile(r"epoch (\d)/2 step (\d)/5: loss \d+\.\d{4} acc \d\.\d{4} \| \d+\.\d samples/s \| "
                  r"ETA \d+:\d\d$")


def collect(tmp_path, monkeypatch, **train_cfg):
    lines = []
    monkeypatch.setattr(progress.sys.stdout, "isatty", lambda: False, raising=False)
    result = train(tiny_config(**train_cfg), workers=0, run_dir=tmp_path / "run", progress=None,
                   log=lines.append)
    return lines, result


def test_without_a_terminal_a_progress_line_comes_every_log_every_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "MIN_LINE_SECONDS", 0.0)
    lines, _ = collect(tmp_path, monkeypatch, log_every=2)
    found = [LINE.match(line) for line in lines]
    steps = [(int(m[1]), int(m[2])) for m in found if m]
    # steps 2 and 4 of each epoch; step 5 ends the epoch, whose own lines follow at once
    assert steps == [(1, 2), (1, 4), (2, 2), (2, 4)], lines


def test_without_a_terminal_a_long_silence_gets_a_line_whatever_log_every_says(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)
    lines, _ = collect(tmp_path, monkeypatch, log_every=1000)
    steps = [(int(m[1]), int(m[2])) for m in map(LINE.match, lines) if m]
    assert steps == [(e, s) for e in (1, 2) for s in (1, 2, 3, 4)], lines


def test_the_epoch_lines_are_an_ml_line_and_a_systems_line_that_quiet_leaves_out(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_dict(epochs=1)))
    assert main(["train", str(config), "--run-dir", str(tmp_path / "a"), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "1 epoch of 5 steps" in out[0] and "epochs" not in out[0]
    ml = next(line for line in out if line.startswith("epoch 1/1: "))
    assert "train loss" in ml and "val loss" in ml and "test loss" in ml and "lr " in ml
    assert "samples/s" not in ml and len(ml) < 120
    systems = out[out.index(ml) + 1]
    assert "samples/s" in systems and "reduce+update" in systems and "MB" in systems
    assert main(["train", str(config), "--run-dir", str(tmp_path / "b"), "--no-progress",
                 "--quiet"]) == 0
    quiet_out = capsys.readouterr().out
    assert "epoch 1/1: " in quiet_out and "samples/s" not in quiet_out


def test_on_a_terminal_the_bar_stays_with_running_accuracy_and_evaluation_has_its_own(
        tmp_path, capsys):
    train(tiny_config(epochs=1), workers=0, run_dir=tmp_path / "run", progress=True, log=quiet)
    err = capsys.readouterr().err
    final = err.split("\r")
    bar = [s for s in final if s.startswith("epoch 1/1: 100%")]
    assert bar, err
    assert re.search(r"loss \d\.\d{4} acc \d\.\d{4} \d+\.\d samples/s", bar[-1]), bar[-1]
    assert "evaluating val (24 samples)" in err and "evaluating test (32 samples)" in err


def test_the_bar_is_left_in_place_when_the_epoch_ends():
    view = Progress("bar", quiet, epochs=1, log_every=1)
    view.start_epoch(0, 0, 2)
    bar = view.bar
    view.close()
    assert bar.leave


# -- steps.jsonl ---------------------------------------------------------------------------

def read_rows(run):
    return [json.loads(line) for line in open(run / "steps.jsonl")]


def test_steps_jsonl_has_a_row_every_log_every_steps_in_the_documented_format(tmp_path):
    result = train(tiny_config(log_every=2), workers=0, run_dir=tmp_path / "run", progress=False,
                   log=quiet)
    rows = read_rows(tmp_path / "run")
    assert all(list(r) == ["step", "epoch", "loss", "accuracy", "lr", "samples_per_second",
                           "seconds"] for r in rows)
    assert [(r["step"], r["epoch"]) for r in rows] == [(2, 1), (4, 1), (5, 1), (7, 2), (9, 2), (10, 2)]
    # Each row's means cover the samples since the previous row: 32, 32 and 8 per epoch
    # (72 training samples, batch 16); weighted, they give the epoch's own means.
    for epoch, record in enumerate(result["history"], start=1):
        mine = [r for r in rows if r["epoch"] == epoch]
        sizes = [32, 32, 8]
        assert sum(r["loss"] * n for r, n in zip(mine, sizes)) / 72 == pytest.approx(
            record["train_loss"], rel=1e-12)
        assert round(sum(r["accuracy"] * n for r, n in zip(mine, sizes))) == round(
            record["train_accuracy"] * 72)
        assert mine[-1]["lr"] == record["lr"]
    assert all(r["samples_per_second"] > 0 for r in rows)
    assert [r["seconds"] for r in rows] == sorted(r["seconds"] for r in rows)


def test_log_every_defaults_to_a_few_dozen_rows_per_epoch(tmp_path):
    cfg = tiny_dict(epochs=1, batch_size=1)  # 72 steps: a row every 72 // 40 = 1 step
    train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "a", progress=False, log=quiet)
    assert len(read_rows(tmp_path / "a")) == 72
    cfg["data"]["synthetic"]["train_size"] = 400  # 300 steps: a row every 7, and the last
    train(config_from_dict(cfg), workers=0, run_dir=tmp_path / "b", progress=False, log=quiet)
    assert [r["step"] for r in read_rows(tmp_path / "b")] == list(range(7, 300, 7)) + [300]


def test_a_resumed_run_drops_the_rows_after_its_checkpoint_and_continues_them_exactly(tmp_path):
    straight = tmp_path / "straight"
    train(tiny_config(log_every=2), workers=0, run_dir=straight, progress=False, log=quiet)
    run = tmp_path / "run"
    train(tiny_config(log_every=2), workers=0, run_dir=run, max_steps=3, progress=False, log=quiet)
    # A parent killed after writing rows past its last checkpoint (step 3) leaves them behind.
    with open(run / "steps.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "epoch": 1, "loss": 9.0, "accuracy": 0.0, "lr": 0.1,
                            "samples_per_second": 1.0, "seconds": 1.0}) + "\n")
    train(None, resume=run, workers=2, progress=False, log=quiet)

    def ml(rows):
        return [(r["step"], r["epoch"], r["loss"], r["accuracy"], r["lr"]) for r in rows]

    assert ml(read_rows(run)) == ml(read_rows(straight))


def test_broadcast_seconds_is_described_as_zero_on_the_local_backend(tmp_path):
    doc = " ".join(monitor.__doc__.split())
    assert "broadcast_seconds Ray only" in doc
    assert "Always 0 on the local backend, where nothing is broadcast" in doc
    result = train(tiny_config(), workers=2, run_dir=tmp_path / "run", progress=False, log=quiet)
    assert [r["broadcast_seconds"] for r in result["history"]] == [0.0, 0.0]
    # the systems line names it only where it is work done (on Ray)
    assert "broadcast" not in monitor.format_systems(result["history"][0])
    on_ray = dict(result["history"][0], broadcast_seconds=1.5)
    assert "(tail 0.0s) broadcast 1.5s reduce+update" in monitor.format_systems(on_ray).replace(
        f"(tail {on_ray['tail_seconds']:.1f}s)", "(tail 0.0s)")


def test_the_evaluation_bar_counts_its_chunks_once_it_knows_how_many_there_are():
    view = Progress("bar", quiet, epochs=2, log_every=1)
    first = view.evaluating("test", 32)
    assert first.bar.total is None  # the first time: elapsed time only
    for _ in range(4):
        first.tick()
    first.close(finished=True)
    second = view.evaluating("test", 32)
    assert second.bar.total == 4
    second.tick()
    second.tick()
    assert second.bar.n == 1  # one chunk done when the second one starts
    second.close(finished=False)  # stopped: the count of a finished evaluation stays
    assert view.eval_ticks == {"test": 4} and view.eval is None
