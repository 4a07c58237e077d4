"""psutil accounting and the metrics files."""

import csv
import json
import multiprocessing

from paracnn.monitor import KEYS, MetricsWriter, ResourceMonitor, format_epoch, format_systems


def record(epoch, **extra):
    r = {k: 0.5 for k in KEYS}
    r.update(epoch=epoch, worker_uss_mb=[10.5, 11.0], workers=2, steps=3, samples=48, **extra)
    return r


def test_metrics_files_have_every_key(tmp_path):
    writer = MetricsWriter(tmp_path, with_val=True)
    writer.write(record(1))
    writer.write(record(2))
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2]
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert list(rows[0]) == list(KEYS)
    assert rows[1]["epoch"] == "2" and rows[1]["worker_uss_mb"] == "10.5;11.0"
    assert float(rows[0]["test_accuracy"]) == lines[0]["test_accuracy"]


def test_without_validation_there_are_no_val_columns(tmp_path):
    writer = MetricsWriter(tmp_path, with_val=False)
    writer.write({k: v for k, v in record(1).items() if not k.startswith("val_")})
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val_loss" not in header and "test_loss" in header


def test_truncate_keeps_earlier_epochs(tmp_path):
    writer = MetricsWriter(tmp_path, with_val=True)
    for e in (1, 2, 3):
        writer.write(record(e))
    kept = writer.truncate(2)
    assert [r["epoch"] for r in kept] == [1, 2]
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 3  # header + 2


def _sleep(conn):
    conn.recv()


def test_resource_monitor_reads_workers():
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_sleep, args=(child,))
    proc.start()
    try:
        mon = ResourceMonitor(lambda: [proc.pid])
        mon.start()
        sum(i * i for i in range(200_000))
        mem = mon.memory()
        assert mem["parent_rss_mb"] > 1
        assert len(mem["worker_uss_mb"]) == 1 and mem["worker_uss_mb"][0] > 0
        assert mem["total_pss_mb"] > 0
        assert mon.cpu_percent() > 0
    finally:
        parent.send("stop")
        proc.join()


def test_an_epoch_is_a_short_ml_line_and_a_systems_line():
    rec = record(3)
    line = format_epoch(rec, epochs=5)
    assert line.startswith("epoch 3/5: train loss 0.5000") and "val loss" in line
    assert "lr " in line and "samples/s" not in line and "MB" not in line
    assert len(line) < 120, line
    systems = format_systems(rec)
    assert "samples/s" in systems and "reduce+update" in systems and "MB" in systems
    assert "loss" not in systems
