"""Time and memory accounting (psutil), the metrics files and the epoch lines.

The time split of an epoch (all seconds of parent wall-clock time unless said)::

    seconds               the whole epoch, evaluation included
    compute_seconds       worker compute: the busy seconds measured inside the
                          workers, summed and divided by the number of workers
                          (with --workers 0, the in-process compute time)
    wait_seconds          the rest of the gradient phase: waiting for the slowest
                          worker, hand-overs and scheduling (gradient wall - compute - broadcast)
    broadcast_seconds     Ray only (--backend ray): putting the weights into Ray's
                          object store, once per step. Always 0 on the local backend,
                          where nothing is broadcast: workers read the weights from
                          shared memory
    tail_seconds          the part of wait_seconds a worker sat idle after its last
                          micro-batch of a step while another finished (load
                          imbalance), averaged over the workers; 0 in-process
    reduce_update_seconds summing micro-batch gradients, clipping, the optimiser
    eval_seconds          evaluating the validation and test sets

``samples_per_second`` counts training samples over the training part of the
epoch (``seconds - eval_seconds``). ``cpu_percent`` is the CPU time of the
parent and its workers over the epoch's wall time (200 = two cores busy).
Memory: ``parent_rss_mb`` (resident set), ``worker_uss_mb`` (unique set of each
worker: what killing it would free), ``total_pss_mb`` (proportional set of the
parent plus workers: shared pages, like the shared-memory dataset, counted once).
The time figures are sums of the steps' :class:`~paracnn.parallel.step_stats.StepStats`.

A run that stops early (``train.early_stopping``) appends one more line to
``metrics.jsonl`` after its last epoch, an event rather than an epoch record
(``metrics.csv`` has none)::

    {"event": "early_stop", "epoch": 5, "monitor": "val_loss", "best": 0.31,
     "best_epoch": 3, "patience": 2, "min_delta": 0.0}

``steps.jsonl`` (:class:`StepsWriter`) has one row every ``train.log_every``
steps and at each epoch's end: ``step`` (the global step count after it,
1-based), ``epoch`` (1-based), ``loss`` and ``accuracy`` (means over the
training samples since the previous row), ``lr``, ``samples_per_second``
(over the same window, training steps only) and ``seconds`` (since this run,
or this resumed run, started).
"""

import csv
import io
import json
import time
from pathlib import Path

import psutil

from .checkpoint import whole_number
from .files import append_line, write_atomic

MB = 1024 * 1024

#: the column order of metrics.csv (``val_*`` only when a validation split is set).
KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
        "test_accuracy", "lr", "steps", "samples", "seconds", "samples_per_second",
        "compute_seconds", "wait_seconds", "tail_seconds", "broadcast_seconds", "reduce_update_seconds",
        "eval_seconds", "workers", "parent_rss_mb", "worker_uss_mb", "total_pss_mb", "cpu_percent")


class ResourceMonitor:
    """Memory and CPU of this process and its workers, from psutil.

    Args:
        worker_pids: a callable returning the PIDs of the live workers.
    """

    def __init__(self, worker_pids):
        self.worker_pids = worker_pids
        self.parent = psutil.Process()
        self._procs = {}
        self._cpu_start = None

    def _proc(self, pid):
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def _cpu_seconds(self):
        total = _cpu(self.parent)
        for pid in self.worker_pids():
            try:
                total += _cpu(self._proc(pid))
            except psutil.Error:
                pass
        # NOTE: a worker replaced mid-epoch takes its CPU time with it; the
        # figure is then a little low, never negative.
        return total

    def start(self):
        """Mark the start of an interval for :meth:`cpu_percent`."""
        self._cpu_start = (time.perf_counter(), self._cpu_seconds())

    def cpu_percent(self):
        """CPU use of parent + workers since :meth:`start`, in percent of one core."""
        if self._cpu_start is None:
            return 0.0
        t0, c0 = self._cpu_start
        wall = time.perf_counter() - t0
        return max(0.0, (self._cpu_seconds() - c0) / wall * 100.0) if wall > 0 else 0.0

    def memory(self):
        """``parent_rss_mb``, ``worker_uss_mb`` (list) and ``total_pss_mb``."""
        full = _full(self.parent)
        pss = getattr(full, "pss", full.rss) if full else 0
        uss = []
        for pid in self.worker_pids():
            try:
                info = self._proc(pid).memory_full_info()
            except psutil.Error:
                continue
            uss.append(round(info.uss / MB, 1))
            pss += getattr(info, "pss", info.uss)
        return {"parent_rss_mb": round(self.parent.memory_info().rss / MB, 1),
                "worker_uss_mb": uss, "total_pss_mb": round(pss / MB, 1)}


def _cpu(proc):
    t = proc.cpu_times()
    return t.user + t.system


def _full(proc):
    try:
        return proc.memory_full_info()
    except psutil.Error:
        return None


class MetricsWriter:
    """Appends one record per epoch to ``metrics.jsonl`` and ``metrics.csv`` in ``run_dir``."""

    def __init__(self, run_dir, with_val):
        self.run_dir = Path(run_dir)
        self.keys = [k for k in KEYS if with_val or not k.startswith("val_")]
        self.jsonl = self.run_dir / "metrics.jsonl"
        self.csv = self.run_dir / "metrics.csv"

    def read(self):
        """The epoch records in ``metrics.jsonl`` (none if it does not exist); events left out."""
        return [r for r in self._lines() if "event" not in r]

    def _lines(self):
        if not self.jsonl.exists():
            return []
        # NOTE: a line cut short by a crash mid-write (or damaged) is dropped, not fatal.
        return [r for r in map(_record, self.jsonl.read_text(errors="replace").splitlines())
                if r is not None]

    def truncate(self, last_epoch):
        """Keep only the records of epochs ``<= last_epoch`` (before resuming); return them.

        Events go: the run they ended goes on. A record without a whole-number epoch (edited
        or damaged) goes too. Both files are replaced atomically, so a crash keeps the old ones.
        """
        if not self.jsonl.exists():
            return []
        records = [r for r in self.read() if whole_number(r.get("epoch")) and r["epoch"] <= last_epoch]
        write_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in records))
        write_atomic(self.csv, "".join(self._csv_rows(records, header=True)))
        return records

    def write(self, record):
        """Append an epoch's record to both files."""
        self.write_event(record)
        new = not self.csv.exists() or self.csv.stat().st_size == 0
        append_line(self.csv, "".join(self._csv_rows([record], header=new)).rstrip("\n"))

    def write_event(self, event):
        """Append ``event`` (``{"event": "early_stop", "epoch": ...}``) to ``metrics.jsonl`` only."""
        append_line(self.jsonl, json.dumps(event))

    def _csv_rows(self, records, header):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if header:
            writer.writerow(self.keys)
        for record in records:
            writer.writerow([_csv_value(record.get(k)) for k in self.keys])
        return buf.getvalue()


class StepsWriter:
    """Appends the per-step rows (see the module docstring) to ``RUN/steps.jsonl``."""

    #: the keys of a row, in order.
    KEYS = ("step", "epoch", "loss", "accuracy", "lr", "samples_per_second", "seconds")

    def __init__(self, run_dir):
        self.path = Path(run_dir) / "steps.jsonl"

    def truncate(self, last_step):
        """Keep only the rows of steps ``<= last_step`` (before resuming from that step)."""
        if not self.path.exists():
            return
        rows = [r for r in map(_record, self.path.read_text(errors="replace").splitlines())
                if r is not None and whole_number(r.get("step")) and r["step"] <= last_step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))

    def write(self, row):
        append_line(self.path, json.dumps({k: row[k] for k in self.KEYS}))


def _record(line):
    """A metrics.jsonl line as a dict, or None if it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)  # NOTE: worker_uss_mb, one figure per worker
    return value


def format_epoch(record, epochs=None):
    """The short ML line of an epoch: its number, losses, accuracies, lr and time.

    For example ``epoch 2/5: train loss 0.3120 acc 0.9051 | test loss 0.2875 acc
    0.9150 | lr 0.02 | 12.4s``.
    """
    of = f"/{epochs}" if epochs else ""
    parts = [f"epoch {record['epoch']}{of}: "
             f"train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"]
    if "val_loss" in record:
        parts.append(f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f}")
    parts.append(f"test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.4f}")
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['seconds']:.1f}s")
    return " | ".join(parts)


def format_systems(record):
    """The systems line of an epoch: throughput, where the time went, memory and CPU."""
    uss = ",".join(f"{u:.0f}" for u in record["worker_uss_mb"]) or "-"
    return (f"  {record['samples_per_second']:.1f} samples/s | compute "
            f"{record['compute_seconds']:.1f}s wait {record['wait_seconds']:.1f}s (tail "
            f"{record['tail_seconds']:.1f}s){_broadcast(record)} reduce+update {record['reduce_update_seconds']:.1f}s "
            f"eval {record['eval_seconds']:.1f}s | rss {record['parent_rss_mb']:.0f} MB, worker uss "
            f"[{uss}] MB, pss {record['total_pss_mb']:.0f} MB, cpu {record['cpu_percent']:.0f}%")


def _broadcast(record):
    """`` broadcast 1.2s`` on Ray; nothing on the local backend, which broadcasts nothing."""
    seconds = record.get("broadcast_seconds") or 0.0
    return f" broadcast {seconds:.1f}s" if seconds > 0 else ""
