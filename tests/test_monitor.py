"""psutil accounting and the metrics files."""

import csv
import json
import multiprocessing
import time

import psutil
import pytest

from paracnn.monitor import KEYS, MetricsWriter, ResourceMonitor, StepsWriter, format_epoch, format_systems


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



def test_truncate_drops_records_whose_epoch_is_not_a_whole_number(tmp_path):
    writer = MetricsWriter(tmp_path, with_val=True)
    for e in (1, "x", 2, None, 2.5, True):
        writer.write(record(e))
    assert [r["epoch"] for r in writer.truncate(5)] == [1, 2]


def test_truncate_replaces_both_files_atomically_or_not_at_all(tmp_path, monkeypatch):
    from paracnn import files
    writer, steps = MetricsWriter(tmp_path, with_val=True), StepsWriter(tmp_path)
    for e in (1, 2, 3):
        writer.write(record(e))
        steps.write({k: e for k in StepsWriter.KEYS})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OSError):
        writer.truncate(1)
    with pytest.raises(OSError):
        steps.truncate(1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # intact, no temp files


#: CPU seconds the worker burns: five of psutil's 10 ms ticks, so it shows.
BURN = 0.05
#: a liveness bound for burning them on a busy host, not a speed requirement.
LIVENESS = 60


def _cpu_seconds(proc):
    t = proc.cpu_times()
    return t.user + t.system


def _burn(conn):
    """On "go", use CPU until this process's own CPU time has advanced by BURN; send the advance."""
    conn.recv()
    me = psutil.Process()
    start, deadline = _cpu_seconds(me), time.monotonic() + LIVENESS
    while _cpu_seconds(me) - start < BURN and time.monotonic() < deadline:
        sum(i * i for i in range(20_000))
    conn.send(_cpu_seconds(me) - start)
    conn.recv()  # stay alive until the parent has read its figures


def test_resource_monitor_reads_workers():
    # NOTE: no CPU-tick race: the worker burns until psutil itself shows the time
    # (the old test burnt about 7 ms in the parent and failed 13-20 % of runs, idle).
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=_burn, args=(child,))
    proc.start()
    try:
        began = time.perf_counter()
        mon = ResourceMonitor(lambda: [proc.pid])
        mon.start()
        parent.send("go")
        assert parent.poll(2 * LIVENESS), "the worker never reported its CPU time"
        burned = parent.recv()
        cpu = mon.cpu_percent()
        wall = time.perf_counter() - began
        mem = mon.memory()
        assert mem["parent_rss_mb"] > 1
        assert len(mem["worker_uss_mb"]) == 1 and mem["worker_uss_mb"][0] > 0
        assert mem["total_pss_mb"] > 0
        assert burned >= BURN, f"the host left the worker only {burned} s of CPU in {LIVENESS} s"
        # The worker's CPU time, all of it after start() and before cpu_percent(), is
        # counted: over at most `wall` seconds that is at least 100 * burned / wall %.
        assert cpu > 0 and cpu >= 100 * burned / wall * (1 - 1e-9), (cpu, burned, wall)
    finally:
        parent.send("stop")
        proc.join(LIVENESS)


def test_an_epoch_is_a_short_ml_line_and_a_systems_line():
    rec = record(3)
    line = format_epoch(rec, epochs=5)
    assert line.startswith("epoch 3/5: train loss 0.5000") and "val loss" in line
    assert "lr " in line and "samples/s" not in line and "MB" not in line
    assert len(line) < 120, line
    systems = format_systems(rec)
    assert "samples/s" in systems and "reduce+update" in systems and "MB" in systems
    assert "loss" not in systems
