"""Running a profile: the serial baseline, each worker count, and the calibration around it.

The order of work, chosen for a noisy shared machine:

1. Start the calibration burners and the **baseline process**, a child that
   holds an in-process trainer (``workers=0``, no pool) and takes one step
   whenever asked. Keeping it in its own process keeps its dataset and heap
   out of the parent's memory figures.
2. For each worker count ``p``: calibrate, start a :class:`~paracnn.train.Trainer`
   with ``p`` workers, take one warm-up step, then ``steps`` timed steps,
   each right after one baseline step (so that the baseline sees the same
   host load as the run) and followed by one 1-vs-p calibration pair. Then
   calibrate again.
3. ``T_serial`` is the median of every baseline step; each run also keeps the
   median of its own interleaved baseline steps (``paired_serial_seconds``).

CPU time is counted too (parent plus workers, from psutil): ``cpu_seconds``
per step does not depend on the share of the host a process gets, so
``cpu_work_ratio`` (over the serial step's) shows the work parallelism adds,
however noisy the wall times are.

Every run starts from the config's initial weights and takes the same
batches, so after ``steps + 1`` steps its weights must be bit-identical to the
baseline's: ``weights_match`` checks that for free.
"""

import copy
import multiprocessing
import signal
import statistics
import traceback

from ..errors import ParacnnError
from ..monitor import ResourceMonitor
from ..parallel import auto_micro_batch
from ..train import Trainer, weights_hash
from .calibrate import Calibrator, calibration_speedup
from .layers import layer_table
from .machine import load_average, machine_info, oversubscription_warnings, usable_cpus
from .scaling import amdahl_report, run_figures

#: the per-step timings of :meth:`Trainer.step` that a profile reports (as ``<key>_seconds``).
SPLIT = ("compute", "broadcast", "reduce_update", "wait")

#: seconds the baseline process may take to load its data and build the model.
BASELINE_TIMEOUT = 600.0


def parse_workers(text):
    """``"1,2,4,8"`` -> ``[1, 2, 4, 8]`` (sorted, without repeats); a ParacnnError otherwise."""
    try:
        counts = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise ParacnnError(f"--workers takes worker counts >= 1 separated by commas, e.g. 1,2,4,8; "
                           f"got {text!r} (the serial baseline is always measured)")
    return counts


def synthetic_config(config, steps):
    """``config`` with its ``data:`` replaced by synthetic images of its shape and classes.

    The training set holds ``steps + 1`` full batches (warm-up included); the
    normalisation is kept.
    """
    from ..config import config_from_dict

    d = copy.deepcopy(config.data)
    old, batch = d["data"], d["train"]["batch_size"]
    d["data"] = {key: old[key] for key in ("normalize", "mean", "std") if key in old}
    d["data"].update(dataset="synthetic", synthetic={
        "train_size": batch * (steps + 1), "test_size": 1,
        "image_shape": list(config.image_shape), "num_classes": config.num_classes})
    return config_from_dict(d, name=config.path)


def batch_stream(trainer):
    """``(indices, epoch)`` of every full batch, epoch after epoch, forever."""
    epoch = 0
    while True:
        for batch in trainer.batches(epoch):
            if len(batch) == trainer.batch_size:
                yield batch, epoch
        epoch += 1


def _silent(line):
    pass


# -- the baseline process -------------------------------------------------------------

def baseline_main(conn, config, data_dir):
    """The baseline process: an in-process trainer answering ``step``, ``state``, ``layers``, ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # NOTE: Ctrl-C is the parent's to handle
    try:
        with Trainer(config, workers=0, data_dir=data_dir, log=_silent) as trainer:
            stream = batch_stream(trainer)
            monitor = ResourceMonitor(list)
            conn.send(("ready", {"num_params": len(trainer.weights),
                                 "micro_batch": trainer.engine.micro_batch,
                                 "tasks_per_step": trainer.engine.slots}))
            while True:
                msg = conn.recv()
                if msg[0] == "step":
                    monitor.start()
                    s = trainer.step(*next(stream))
                    conn.send(("ok", _with_cpu(s, monitor)))
                elif msg[0] == "state":
                    conn.send(("ok", {"weights_sha256": weights_hash(trainer.weights),
                                      "steps": trainer.global_step, **monitor.memory()}))
                elif msg[0] == "layers":
                    data = trainer.engine.datasets["train"]
                    samples = [data.sample(i) for i in range(min(msg[1], len(data)))]
                    conn.send(("ok", layer_table(trainer.model, samples, msg[2])))
                else:
                    return
    except (EOFError, BrokenPipeError):
        pass
    except BaseException as e:  # noqa: BLE001 - reported by the parent
        kind = "user" if isinstance(e, ParacnnError) else "bug"
        try:
            conn.send(("error", kind, str(e) if kind == "user" else traceback.format_exc()))
        except OSError:
            pass
    finally:
        conn.close()


class Baseline:
    """The parent's handle on the baseline process."""

    def __init__(self, config, start_method, data_dir):
        ctx = multiprocessing.get_context(start_method)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=baseline_main, args=(child, config, data_dir),
                                name="paracnn-profile-baseline", daemon=True)
        self.proc.start()
        child.close()
        self.info = self._answer(BASELINE_TIMEOUT)

    def _answer(self, timeout=None):
        if not self.conn.poll(timeout):
            raise ParacnnError(f"the baseline process did not answer within {timeout:.0f} s")
        try:
            msg = self.conn.recv()
        except EOFError:
            self.proc.join(1.0)
            raise ParacnnError(f"the baseline process died (exit code {self.proc.exitcode})") from None
        if msg[0] == "error":
            raise ParacnnError(msg[2]) if msg[1] == "user" else RuntimeError(
                f"the baseline process failed:\n{msg[2]}")
        return msg[1]

    def ask(self, *msg):
        self.conn.send(msg)
        return self._answer()

    def close(self):
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        self.proc.join(5.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


# -- the profile ---------------------------------------------------------------------------

def _with_cpu(step, monitor):
    """``step`` plus the CPU percent and CPU seconds of the processes ``monitor`` watches."""
    percent = monitor.cpu_percent()
    return {**step, "cpu_percent": percent, "cpu_seconds": percent / 100.0 * step["seconds"]}


def medians(steps, keys):
    return {k: statistics.median(s[k] for s in steps) for k in keys}


def run_workers(p, config, baseline, calibrator, steps, start_method, data_dir, log):
    """``steps`` timed steps on ``p`` workers, each after one baseline step; their medians.

    After each timed step (with ``p > 1``) one calibration pair is taken.
    """
    with Trainer(config, workers=p, start_method=start_method, data_dir=data_dir, log=log) as t:
        stream = batch_stream(t)
        monitor = ResourceMonitor(t.engine.worker_pids)
        t.step(*next(stream))  # warm-up: first weight load in each worker, caches
        timed, serial, pairs = [], [], []
        for _ in range(steps):
            serial.append(baseline.ask("step"))
            monitor.start()
            s = t.step(*next(stream))
            timed.append(_with_cpu(s, monitor))
            if p > 1:
                pairs += calibrator.measure(p, repeats=1)
        out = medians(timed, ("seconds", "cpu_percent", "cpu_seconds") + SPLIT)
        out.update(monitor.memory(), weights_sha256=weights_hash(t.weights),
                   start_method=t.start_method, serial=serial, calibration=pairs)
        return out


def profile(config, workers, *, steps=5, start_method=None, data_dir=None, layers=False,
            synthetic=False, log=print):
    """Profile ``config`` at each worker count in ``workers``; return the result dict.

    See :mod:`paracnn.profiling` for the keys. ``log`` gets progress lines
    and warnings.
    """
    if steps < 1:
        raise ParacnnError(f"--steps must be at least 1, got {steps}")
    if synthetic:
        config = synthetic_config(config, steps)
    batch = config.data["train"]["batch_size"]
    start_method = start_method or config.data["train"].get("start_method")
    cpus, load = usable_cpus(), load_average()
    warnings = _warnings(config, workers, cpus)
    for w in warnings:
        log(f"warning: {w}")
    calibrator = Calibrator(max(workers), start_method)
    baseline = None
    try:
        baseline = Baseline(config, start_method, data_dir)
        baseline.ask("step")  # warm-up
        runs, serial_steps, serial_state = [], [], None
        for p in workers:
            log(f"profiling {p} worker{'s' if p > 1 else ''} ({steps} step{'s' if steps > 1 else ''})...")
            before = calibrator.measure(p) if p > 1 else []
            run = run_workers(p, config, baseline, calibrator, steps, start_method, data_dir, log)
            run["calibration"] = before + run["calibration"] + (calibrator.measure(p) if p > 1 else [])
            if serial_state is None:  # the baseline has now taken steps + 1 steps, like the run
                serial_state = baseline.ask("state")
            serial_steps += run["serial"]
            runs.append(run)
        table = baseline.ask("layers", min(batch, 32), 3) if layers else None
    finally:
        if baseline is not None:
            baseline.close()
        calibrator.close()
    serial = _serial_summary(serial_steps, serial_state, batch)
    result = {"config": config.path, "synthetic": synthetic, "dataset": config.data["data"]["dataset"],
              "num_params": baseline.info["num_params"],
              "machine": machine_info(cpus, load, start_method=runs[0]["start_method"], batch_size=batch,
                                      micro_batch=baseline.info["micro_batch"], steps=steps),
              "serial": serial, "runs": [_run_summary(p, r, serial, batch) for p, r in zip(workers, runs)],
              "warnings": warnings}
    result["amdahl"] = amdahl_report(result["runs"], baseline.info["tasks_per_step"])
    if table is not None:
        result["layers"] = table
    return result


def _warnings(config, workers, cpus):
    """More workers than usable CPUs, or than micro-batches per step."""
    tc = config.data["train"]
    tasks = -(-tc["batch_size"] // (tc.get("micro_batch") or auto_micro_batch(tc["batch_size"])))
    warnings = oversubscription_warnings(workers, cpus)
    if max(workers) > tasks:
        warnings.append(f"a step has {tasks} micro-batches, so at most {tasks} workers are busy; "
                        f"use a larger batch or a smaller train.micro_batch for more")
    return warnings


def _serial_summary(steps, state, batch):
    out = {"step_seconds": statistics.median(s["seconds"] for s in steps)}
    out["samples_per_second"] = batch / out["step_seconds"]
    out.update({f"{k}_seconds": v for k, v in medians(steps, SPLIT).items()})
    out.update(cpu_percent=statistics.median(s["cpu_percent"] for s in steps),
               cpu_seconds=statistics.median(s["cpu_seconds"] for s in steps), steps=len(steps),
               parent_rss_mb=state["parent_rss_mb"], total_pss_mb=state["total_pss_mb"],
               weights_sha256=state["weights_sha256"])
    return out


def _run_summary(p, run, serial, batch):
    t = run["seconds"]
    c = calibration_speedup(p, run["calibration"])
    out = {"workers": p, "samples_per_second": batch / t}
    out.update(run_figures(p, t, serial["step_seconds"], c))
    out.update({"step_seconds": t, **{f"{k}_seconds": run[k] for k in SPLIT},
                "paired_serial_seconds": statistics.median(s["seconds"] for s in run["serial"]),
                "cpu_percent": run["cpu_percent"], "cpu_seconds": run["cpu_seconds"],
                "cpu_work_ratio": (run["cpu_seconds"] / serial["cpu_seconds"]
                                   if serial["cpu_seconds"] else None),
                "parent_rss_mb": run["parent_rss_mb"],
                "worker_uss_mb": run["worker_uss_mb"], "total_pss_mb": run["total_pss_mb"],
                "weights_match": run["weights_sha256"] == serial["weights_sha256"],
                "calibration_seconds": [list(pair) for pair in run["calibration"]]})
    return out
