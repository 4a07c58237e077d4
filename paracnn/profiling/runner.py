"""Running a profile: the serial baseline, each worker count, and the calibration around it.

The order of work, chosen for a noisy shared machine:

1. Start the calibration burners (two sets: the model's own training step,
   and a fixed burn; see :mod:`.calibrate`) and the **baseline process**, a child that
   holds an in-process trainer (``workers=0``, no pool) and takes one step
   whenever asked. Keeping it in its own process keeps its dataset and heap
   out of the parent's memory figures.
2. For each worker count ``p``: calibrate, reset the baseline to the initial
   weights, start a :class:`~paracnn.training.step.Trainer` with ``p`` workers, take
   one warm-up step in each, then ``steps`` timed steps, each right after the
   baseline's step of the same index (the same arithmetic, under the same
   host load) and followed by one 1-vs-p calibration pair of the model
   burn. Then calibrate again. The fixed burn is measured only before and
   after (``calibration_speedup_fixed``, for comparing machines and models).
3. ``T_serial`` is the median of every baseline step; each run also keeps the
   median of its own interleaved baseline steps (``paired_serial_seconds``)
   and ``paired_speedup``, their ratio to its step: the estimate least moved
   by a host whose speed drifts between runs.

CPU time is counted too (parent plus workers, from psutil): ``cpu_seconds``
per step does not depend on the share of the host a process gets, so
``cpu_work_ratio`` (over the serial step's) shows the work parallelism adds,
however noisy the wall times are.

NOTE: the reset matters: a step's cost depends on the weights (the kernels
skip outputs that got no gradient), so a baseline that trained on across
runs would time other work than the run it is paired with.

Every run and its baseline start from the config's initial weights and take
the same batches, so after ``steps + 1`` steps their weights must be
bit-identical: ``weights_match`` checks that for free.
"""

import copy
import math
import platform
import statistics

from ..errors import ParacnnError
from ..monitor import ResourceMonitor
from ..training.step import Trainer, weights_hash
from ..workers import AUTO, auto_workers, idle_warning, tasks_per_step
from .baseline import Baseline, batch_stream, with_cpu
from .calibrate import (JIT_WARMUP_SAMPLES, Calibrator, ModelBurn, calibration_speedup,
                        calibration_spread)
from .machine import load_average, machine_info, oversubscription_warnings, usable_cpus
from .scaling import amdahl_report, fixed_cost_model, run_figures

#: the calibration's interquartile spread (over its median) above which a run is flagged as
#: taken on a busy host (busy days on our 2-vCPU machine gave 17 to 36 %).
NOISY_SPREAD = 0.10

#: the per-step timings of :meth:`Trainer.step` that a profile reports (as ``<key>_seconds``).
SPLIT = ("compute", "broadcast", "reduce_update", "wait", "tail")

#: where the fixed cost of a step goes (see :mod:`paracnn.parallel.step_stats`), also as
#: ``<key>_seconds``; ``fixed`` is the step's wall time minus its compute.
BREAKDOWN = ("fixed", "result_wait", "reduce", "update", "shm_io", "load_weights", "store_grads")


def with_fixed(step):
    """A step's dict (from :func:`~paracnn.profiling.baseline.with_cpu`) with ``fixed`` added."""
    return {**step, "fixed": step["seconds"] - step["compute"]}


def parse_workers(text, train_cfg=None):
    """``"1,2,4,8"`` -> ``[1, 2, 4, 8]`` (sorted, without repeats); a ParacnnError otherwise.

    ``auto`` stands for :func:`paracnn.workers.auto_workers` of ``train_cfg``.
    """
    parts = [part.strip() for part in str(text).split(",")]
    counts = []
    for part in parts:
        if part == AUTO and train_cfg is not None:
            counts.append(auto_workers(train_cfg))
        elif _count(part) >= 1:
            counts.append(_count(part))
        else:
            what = "an empty count" if not part else f"{part!r}"
            raise ParacnnError(f"--workers takes worker counts >= 1 (or auto) separated by commas, "
                               f"e.g. 1,2,4,8; {text!r} has {what} (the serial baseline is always "
                               f"measured)")
    return sorted(set(counts))


def _count(text):
    try:
        return int(text)
    except ValueError:
        return 0


#: Under PyPy, untimed steps before any timed one, whatever the samples: the code that runs
#: once per step (the reduction and update loops, the mailboxes, the scheduler) compiles
#: only after it has run often enough. Measured on LeNet-5 with 2 workers: 8.4 ms of fixed
#: cost per step after 100 warm-up steps (median of 3 profiles), 4.0 ms over a whole
#: training epoch (844 steps); 8 workers used 131 ms of CPU per step after 90 warm-up
#: steps, 123 ms after 350.
JIT_WARMUP_STEPS = 400


def warmup_steps(batch, processes, cpus=None):
    """Untimed steps before a run with ``processes`` processes sharing each ``batch``.

    CPython needs one (the first weight load, caches); under PyPy the steps go on
    until each process that computes (at most one per CPU: the others wait their
    turn) has seen ``JIT_WARMUP_SAMPLES``, and for at least :data:`JIT_WARMUP_STEPS`.
    """
    if platform.python_implementation() != "PyPy":
        return 1
    busy = min(processes, cpus) if cpus else processes
    return max(JIT_WARMUP_STEPS, math.ceil(JIT_WARMUP_SAMPLES * busy / batch))


def synthetic_data(config, train_size):
    """A ``data:`` mapping of ``train_size`` synthetic images of ``config``'s shape and classes.

    The config's normalisation is kept, so the inputs span the same range.
    """
    old = config.data["data"]
    data = {key: old[key] for key in ("normalize", "mean", "std") if key in old}
    data.update(dataset="synthetic", synthetic={
        "train_size": train_size, "test_size": 1,
        "image_shape": list(config.image_shape), "num_classes": config.num_classes})
    return data


def synthetic_config(config, steps):
    """``config`` with its ``data:`` replaced by :func:`synthetic_data`.

    The training set holds ``steps + 1`` full batches (one warm-up step included;
    PyPy's longer warm-up goes round them again).
    """
    from ..config import config_from_dict

    d = copy.deepcopy(config.data)
    d["data"] = synthetic_data(config, d["train"]["batch_size"] * (steps + 1))
    return config_from_dict(d, name=config.path)


# -- the profile ---------------------------------------------------------------------------

def medians(steps, keys):
    return {k: statistics.median(s[k] for s in steps) for k in keys}


def run_workers(p, config, baseline, calibrator, steps, start_method, data_dir, log):
    """``steps`` timed steps on ``p`` workers, each right after the baseline's step of the same index.

    The baseline is reset first, so both compute the same steps. After each
    timed step (with ``p > 1``) one calibration pair is taken. Returns the
    medians, memory, weights hash, the baseline steps, the pairs and the
    baseline's state.
    """
    with Trainer(config, workers=p, start_method=start_method, data_dir=data_dir, log=log) as t:
        stream = batch_stream(t)
        monitor = ResourceMonitor(t.engine.worker_pids)
        baseline.ask("reset")
        # NOTE: as many warm-up steps in both, so that their timed steps stay paired.
        for _ in range(warmup_steps(config.data["train"]["batch_size"], p, usable_cpus()["usable"])):
            baseline.ask("step")
            t.step(*next(stream))  # warm-ups: first weight load in each worker, caches, the JIT
        timed, serial, pairs = [], [], []
        for _ in range(steps):
            serial.append(with_fixed(baseline.ask("step")))
            monitor.start()
            s = t.step(*next(stream))
            timed.append(with_fixed(with_cpu(s, monitor)))
            if p > 1:
                pairs += calibrator.measure(p, repeats=1)
        out = medians(timed, ("seconds", "cpu_percent", "cpu_seconds", "presum") + SPLIT + BREAKDOWN)
        out.update(monitor.memory(), weights_sha256=weights_hash(t.weights),
                   start_method=t.start_method, serial=serial, calibration=pairs,
                   serial_state=baseline.ask("state"))
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
    calibrator = fixed = baseline = None
    try:
        calibrator = _calibrator(config, max(workers), start_method,
                                 ModelBurn(config, synthetic_data(config, 4)))
        fixed = _calibrator(config, max(workers), start_method)
        baseline = Baseline(config, start_method, data_dir)
        runs, serial_steps = [], []
        for p in workers:
            log(f"profiling {p} worker{'s' if p > 1 else ''} ({steps} step{'s' if steps > 1 else ''})...")
            before = calibrator.measure(p) if p > 1 else []
            fixed_pairs = fixed.measure(p) if p > 1 else []
            run = run_workers(p, config, baseline, calibrator, steps, start_method, data_dir, log)
            run["calibration"] = before + run["calibration"] + (calibrator.measure(p) if p > 1 else [])
            run["calibration_fixed"] = fixed_pairs + (fixed.measure(p) if p > 1 else [])
            serial_steps += run["serial"]
            runs.append(run)
        table = baseline.ask("layers", min(batch, 32), 3) if layers else None
    finally:
        for process in (baseline, fixed, calibrator):
            if process is not None:
                process.close()
    serial = _serial_summary(serial_steps, runs[0]["serial_state"], batch)
    result = {"config": config.path, "synthetic": synthetic, "dataset": config.data["data"]["dataset"],
              "num_params": baseline.info["num_params"],
              "machine": machine_info(cpus, load, backend=config.data["train"].get("backend", "local"),
                                      start_method=runs[0]["start_method"], batch_size=batch,
                                      micro_batch=baseline.info["micro_batch"], steps=steps),
              "serial": serial, "runs": [_run_summary(p, r, serial, batch) for p, r in zip(workers, runs)],
              "warnings": warnings}
    # NOTE: not logged as well: the table, printed next, ends with the warnings.
    warnings += [noisy_host_warning(r) for r in result["runs"] if r["calibration_spread"] > NOISY_SPREAD]
    result["amdahl"] = amdahl_report(result["runs"], baseline.info["tasks_per_step"])
    on_ray = config.data["train"].get("backend") == "ray"  # NOTE: Ray's actors are not capped
    result["fixed_cost"] = fixed_cost_model(serial, result["runs"], baseline.info["tasks_per_step"],
                                            None if on_ray else cpus["usable"])
    if table is not None:
        result["layers"] = table
    return result


def _calibrator(config, processes, start_method, workload=None):
    """Burners as processes of this machine, or as Ray actors with ``train.backend: ray``.

    NOTE: created before any trainer, so a local Ray is sized to the largest worker count.
    """
    tc = config.data["train"]
    if tc.get("backend") == "ray":
        from .ray_calibrate import RayCalibrator
        return RayCalibrator(processes, tc.get("ray_address"), workload=workload)
    return Calibrator(processes, start_method, workload=workload)


def noisy_host_warning(run):
    """The warning for a run whose calibration swung by more than :data:`NOISY_SPREAD`."""
    low, high = run["calibration_range"]
    return (f"the hardware's share was unsteady during the {run['workers']}-worker run: the middle "
            f"half of the calibration pairs spans {low:.2f}x to {high:.2f}x "
            f"({100 * run['calibration_spread']:.0f} % of the median), so other work on the host "
            f"moved this run's figures by about as much; repeat it when the machine is quieter, or "
            f"take the median of several runs")


def _warnings(config, workers, cpus):
    """More workers than usable CPUs, or than micro-batches per step."""
    tasks = tasks_per_step(config.data["train"])
    idle = idle_warning(max(workers), tasks, f"a step has only {tasks} micro-batches",
                        "use a larger train.batch_size or a smaller train.micro_batch for more")
    # NOTE: Ray actors run on the cluster's CPUs, which this machine cannot count.
    on_ray = config.data["train"].get("backend") == "ray"
    return ([] if on_ray else oversubscription_warnings(workers, cpus)) + ([idle] if idle else [])


def _serial_summary(steps, state, batch):
    out = {"step_seconds": statistics.median(s["seconds"] for s in steps)}
    out["samples_per_second"] = batch / out["step_seconds"]
    out.update({f"{k}_seconds": v for k, v in medians(steps, SPLIT + BREAKDOWN).items()})
    out["fixed_share"] = out["fixed_seconds"] / out["step_seconds"]
    out.update(cpu_percent=statistics.median(s["cpu_percent"] for s in steps),
               cpu_seconds=statistics.median(s["cpu_seconds"] for s in steps), steps=len(steps),
               parent_rss_mb=state["parent_rss_mb"], total_pss_mb=state["total_pss_mb"],
               weights_sha256=state["weights_sha256"])
    return out


def _run_summary(p, run, serial, batch):
    t = run["seconds"]
    c = calibration_speedup(p, run["calibration"])
    low, high, spread = calibration_spread(p, run["calibration"])
    paired = statistics.median(s["seconds"] for s in run["serial"])
    out = {"workers": p, "samples_per_second": batch / t}
    out.update(run_figures(p, t, serial["step_seconds"], c))
    out.update({"step_seconds": t, **{f"{k}_seconds": run[k] for k in SPLIT + BREAKDOWN},
                "fixed_share": run["fixed"] / serial["step_seconds"],
                "presum_seconds": run["presum"],
                "paired_serial_seconds": paired, "paired_speedup": paired / t,
                "cpu_percent": run["cpu_percent"], "cpu_seconds": run["cpu_seconds"],
                "cpu_work_ratio": (run["cpu_seconds"] / serial["cpu_seconds"]
                                   if serial["cpu_seconds"] else None),
                "parent_rss_mb": run["parent_rss_mb"],
                "worker_uss_mb": run["worker_uss_mb"], "total_pss_mb": run["total_pss_mb"],
                "weights_match": run["weights_sha256"] == run["serial_state"]["weights_sha256"],
                "calibration_seconds": [list(pair) for pair in run["calibration"]],
                "calibration_range": [low, high], "calibration_spread": spread,
                "calibration_speedup_fixed": calibration_speedup(p, run["calibration_fixed"]),
                "calibration_fixed_seconds": [list(pair) for pair in run["calibration_fixed"]]})
    return out
