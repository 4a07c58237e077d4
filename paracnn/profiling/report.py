"""A profile as a terminal table, a JSON file, a CSV file (one row per worker count) or a plot."""

import csv
import json

from ..tools.extras import check_installed, require
from .layers import format_layer_table
from .machine import describe_cpus
from .scaling import amdahl_speedup

#: the CSV columns, one row per worker count (``worker_uss_mb`` joined by ``;``).
CSV_KEYS = ("workers", "samples_per_second", "speedup", "efficiency", "karp_flatt",
            "calibration_speedup", "calibration_speedup_fixed", "calibration_spread",
            "relative_efficiency", "karp_flatt_calibrated", "step_seconds",
            "compute_seconds", "broadcast_seconds", "reduce_update_seconds", "wait_seconds",
            "tail_seconds", "fixed_seconds", "fixed_share", "result_wait_seconds", "reduce_seconds",
            "update_seconds", "shm_io_seconds", "load_weights_seconds", "store_grads_seconds",
            "paired_serial_seconds", "paired_speedup", "cpu_percent", "cpu_seconds", "cpu_work_ratio",
            "parent_rss_mb", "total_pss_mb", "worker_uss_mb", "weights_match")

SCALING_HEADER = (f"{'workers':>7} {'samples/s':>9} {'speedup':>7} {'effic.':>7} {'K-F':>7} "
                  f"{'hw x':>5} {'rel.eff':>7} {'K-F cal':>7}")
SPLIT_HEADER = (f"{'workers':>7} {'step':>8} {'compute':>8} {'bcast':>6} {'reduce+upd':>10} {'wait':>6} "
                f"{'tail':>6} {'cpu %':>5} {'cpu ms':>7} {'work':>6} {'RSS MB':>7} {'PSS MB':>7}  worker USS MB")


def _pct(v, width=7):
    return f"{'-':>{width}}" if v is None else f"{100 * v:>{width - 1}.1f}%"


def _scaling_row(name, r):
    hw = "-" if r.get("calibration_speedup") is None else f"{r['calibration_speedup']:.2f}"
    return (f"{name:>7} {r['samples_per_second']:>9.1f} {r.get('speedup', 1.0):>7.2f} "
            f"{_pct(r.get('efficiency'))} {_pct(r.get('karp_flatt'))} {hw:>5} "
            f"{_pct(r.get('relative_efficiency'))} {_pct(r.get('karp_flatt_calibrated'))}")


def _split_row(name, r):
    ms = {k: 1e3 * r[f"{k}_seconds"]
          for k in ("step", "compute", "broadcast", "reduce_update", "wait", "tail")}
    uss = ",".join(f"{u:.0f}" for u in r.get("worker_uss_mb") or []) or "-"
    return (f"{name:>7} {ms['step']:>8.1f} {ms['compute']:>8.1f} {ms['broadcast']:>6.1f} "
            f"{ms['reduce_update']:>10.1f} {ms['wait']:>6.1f} {ms['tail']:>6.1f} {r['cpu_percent']:>5.0f} "
            f"{1e3 * r['cpu_seconds']:>7.0f} {r.get('cpu_work_ratio', 1.0) or 0.0:>6.3f} "
            f"{r['parent_rss_mb']:>7.1f} {r['total_pss_mb']:>7.1f}  {uss}")


FIXED_HEADER = (f"{'workers':>7} {'fixed':>7} {'share':>6} {'tail':>6} {'result':>6} {'reduce':>6} "
                f"{'update':>6} {'shm io':>6} {'other':>6}   {'load w':>6} {'store g':>7}")


def _fixed_row(name, r):
    ms = {k: 1e3 * (r.get(f"{k}_seconds") or 0.0)
          for k in ("fixed", "tail", "result_wait", "reduce", "update", "shm_io", "load_weights",
                    "store_grads")}
    other = ms["fixed"] - sum(ms[k] for k in ("tail", "result_wait", "reduce", "update", "shm_io"))
    return (f"{name:>7} {ms['fixed']:>7.2f} {_pct(r.get('fixed_share'), 6)} {ms['tail']:>6.2f} "
            f"{ms['result_wait']:>6.2f} {ms['reduce']:>6.2f} {ms['update']:>6.2f} {ms['shm_io']:>6.2f} "
            f"{other:>6.2f}   {ms['load_weights']:>6.2f} {ms['store_grads']:>7.2f}")


def _fixed_cost_lines(result):
    """The fixed cost per step, where it goes, and the fixed-cost model's predictions."""
    lines = ["", "Fixed cost per step (median ms: the step minus its compute; share: of the serial "
             "step; tail: a worker idle after its last micro-batch; result: results waiting to be "
             "read; reduce, update, shm io: summing the slots, the optimiser, weights and buffers "
             "through shared memory, per worker; other: handing out tasks, waking workers, the "
             "parent's bookkeeping; load w and store g are inside compute, as in the serial step)",
             FIXED_HEADER, _fixed_row("serial", result["serial"])]
    lines += [_fixed_row(str(r["workers"]), r) for r in result["runs"]]
    model = result.get("fixed_cost")
    if model and model["per_step_seconds"] is not None:
        pred = ", ".join(f"{p}: {v:.1f}x" for p, v in model["predicted_speedup"].items())
        lines.append(f"Fixed-cost model (T(p) = W/p + F0 + F1 p, fitted at "
                     f"{', '.join(model['measured'])} workers): W {1e3 * model['compute_seconds']:.1f} ms, "
                     f"F0 {1e3 * model['per_step_seconds']:.2f} ms, F1 {1e3 * model['per_worker_seconds']:+.3f}"
                     f" ms per worker; predicted speedup on dedicated cores at {pred}")
    return lines


def _amdahl_line(label, a):
    f = a["serial_fraction"]
    if f is None:
        return f"  {label}: nothing to fit (no point above one worker, or the hardware gave too little)"
    ceiling = "none (superlinear)" if a["ceiling"] is None else f"{a['ceiling']:.0f}x"
    pred = ", ".join(f"{p}: {v:.1f}x" for p, v in a["predicted_speedup"].items())
    return f"  {label}: f = {100 * f:.2f} %, ceiling {ceiling}; predicted speedup at {pred}"


def format_profile(result):
    """The whole profile as terminal lines."""
    m, s, a = result["machine"], result["serial"], result["amdahl"]
    data = "synthetic data" if result["synthetic"] else f"{result['dataset']} data"
    cpus = {"usable": m["usable_cpus"], "affinity": m["affinity_cpus"], "cgroup_quota": m["cgroup_cpu_quota"]}
    load = m["load_average"][0] if m["load_average"] else "n/a"
    lines = [f"profile of {result['config']} on {data}: {result['num_params']:,} parameters, batch "
             f"{m['batch_size']} (micro-batch {m['micro_batch']}), {m['steps']} timed steps per run",
             f"Python {m['python']}{_interpreter(m)}, {describe_cpus(cpus)}, "
             f"{'Ray actors' if m.get('backend') == 'ray' else 'start method ' + str(m['start_method'])}, "
             f"load average {load}",
             "", "Scaling (medians; hw x: cores' worth that as many processes running the model's training "
             "step with no communication got, around the run; rel.eff = speedup / hw x; K-F: "
             "Karp-Flatt serial fraction, raw and against hw x)",
             SCALING_HEADER, _scaling_row("serial", s)]
    lines += [_scaling_row(str(r["workers"]), r) for r in result["runs"]]
    fixed = [r for r in result["runs"] if r["workers"] > 1 and r.get("calibration_speedup_fixed")]
    if fixed:
        lines.append("A fixed burn (the same for every model) got: "
                     + ", ".join(f"{r['workers']} processes {r['calibration_speedup_fixed']:.2f}x"
                                 for r in fixed))
    lines += ["", "Per step (median ms) and resources (tail: the part of wait a worker idled after its "
              "last micro-batch, load imbalance; the rest of wait is messages; cpu: parent + workers; "
              "work: cpu ms over the serial step's; parent RSS, total PSS of parent + workers, each "
              "worker's USS)",
              SPLIT_HEADER, _split_row("serial", s)]
    lines += [_split_row(str(r["workers"]), r) for r in result["runs"]]
    lines += _fixed_cost_lines(result)
    order = ["calibrated", "raw"] if a["fit_on"] == "calibrated" else ["raw", "calibrated"]
    labels = {"calibrated": "calibrated: S against hw x (the software's own serial fraction)",
              "raw": "raw: S against workers (software and hardware together)"}
    lines += ["", "Amdahl fits (the first is the one reported):"]
    lines += [_amdahl_line(labels[k], a[k]) for k in order]
    bound = a[a["fit_on"]]["predicted_speedup_task_bound"]
    if bound and a.get("tasks_per_step"):
        lines.append(f"  with {a['tasks_per_step']} micro-batches per step as the only tasks: "
                     + ", ".join(f"{p}: {v:.1f}x" for p, v in bound.items()))
    serial_ms = 1e3 * s["reduce_update_seconds"]
    ray = m.get("backend") == "ray"
    where = ("on the Ray driver" if ray else
             "in the parent up to 1 worker, in slices across the workers from 2")
    lines.append(f"Reduce + update per step (summing the gradient slots, the optimiser step; {where}): "
                 f"serial {serial_ms:.1f} ms ({100 * serial_ms / 1e3 / s['step_seconds']:.2f} % of the "
                 f"step); "
                 + ", ".join(_reduce_update(r) for r in result["runs"])
                 + (". bcast: putting the weights into Ray's object store, once per step." if ray else
                    ". Nothing is broadcast: every process reads the weights from shared memory."))
    same = all(r["weights_match"] for r in result["runs"])
    lines.append(f"Weights after {m['steps'] + 1} steps: "
                 + ("bit-identical to the serial baseline at every worker count." if same else
                    "DIFFER from the serial baseline at "
                    + ", ".join(str(r["workers"]) for r in result["runs"] if not r["weights_match"])
                    + " workers: a determinism bug."))
    for w in result["warnings"]:
        lines.append(f"warning: {w}")
    if "layers" in result:
        t = result["layers"]
        lines += ["", f"Per-layer times, in-process ({t['samples']} samples x {t['repeats']} repeats, "
                      f"median ms per sample):"] + format_layer_table(t)
    return "\n".join(lines)


def _reduce_update(run):
    """``2 workers 16.4 ms (+ 2.1 ms summed by the parent during wait)``."""
    plural = "s" if run["workers"] > 1 else ""
    text = f"{run['workers']} worker{plural} {1e3 * run['reduce_update_seconds']:.1f} ms"
    if run.get("presum_seconds"):
        text += f" (+ {1e3 * run['presum_seconds']:.1f} ms summed by the parent during wait)"
    return text


def write_json(result, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


def write_csv(result, path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_KEYS)
        for r in result["runs"]:
            writer.writerow([_csv_value(r.get(k)) for k in CSV_KEYS])


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def check_matplotlib():
    """Raise the one-line ParacnnError now if matplotlib is missing, without importing it.

    NOTE: importing it here would put ~30 MB into the parent before the
    workers fork, and into every memory figure of the profile.
    """
    check_installed("matplotlib", "--plot")


def require_matplotlib():
    """Import matplotlib's Figure, or a one-line ParacnnError saying how to install it."""
    return require("matplotlib.figure", "--plot").Figure


#: the calibration's legend entry: the model's own training step, run in 1 and in p processes.
HARDWARE_LABEL = "hardware (calibration: the model's own step in p processes)"


def write_plot(result, path):
    """Speedup and efficiency against workers, with the ideal and the Amdahl lines, as a PNG."""
    Figure = require_matplotlib()
    runs = result["runs"]
    ps = [r["workers"] for r in runs]
    top = max(ps + [2])
    xs = [1 + (top - 1) * i / 100 for i in range(101)]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    ax.plot([1, top], [1, top], ":", color="grey", label="ideal")
    bx.plot([1, top], [1, 1], ":", color="grey", label="ideal")
    styles = {"calibrated": ("-", "C2"), "raw": ("--", "C3")}
    for kind, (style, colour) in styles.items():
        f = result["amdahl"][kind]["serial_fraction"]
        if f is None:
            continue
        f = max(0.0, f)
        label = f"Amdahl, {kind} fit (f = {100 * f:.2f} %)"
        if kind == "calibrated":
            label += ", dedicated cores"
        ax.plot(xs, [amdahl_speedup(f, x) for x in xs], style, color=colour, label=label)
        bx.plot(xs, [amdahl_speedup(f, x) / x for x in xs], style, color=colour, label=label)
    hw = [(r["workers"], r["calibration_speedup"]) for r in runs if r["calibration_speedup"]]
    ax.plot([p for p, _ in hw], [c for _, c in hw], "s--", color="C7", label=HARDWARE_LABEL)
    ax.plot(ps, [r["speedup"] for r in runs], "o-", color="C0", label="measured speedup")
    bx.plot(ps, [r["efficiency"] for r in runs], "o-", color="C0", label="efficiency (speedup / workers)")
    rel = [(r["workers"], r["relative_efficiency"]) for r in runs if r["relative_efficiency"]]
    bx.plot([p for p, _ in rel], [e for _, e in rel], "D-", color="C1",
            label="relative efficiency (speedup / hardware)")
    ax.set(xlabel="workers", ylabel="speedup over the serial step", title="Speedup")
    highest = max([1.0] + [r["efficiency"] for r in runs] + [e for _, e in rel])
    bx.set(xlabel="workers", ylabel="efficiency", title="Efficiency", ylim=(0, 1.1 * highest))
    for axis in (ax, bx):
        axis.set_xticks(ps)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(f"{result['config']}: batch {m['batch_size']}, Python {m['python']}, "
                 f"{m['usable_cpus']:g} usable CPUs", fontsize=10)
    fig.savefig(path, dpi=110)


def _interpreter(m):
    """`` (PyPy 7.3.11 JIT, jit_kernels)`` or ``, math.sumprod yes`` for the header line."""
    if m.get("jit"):
        return f" ({m['jit']}, {m.get('kernels', 'kernels')})"
    return f", math.sumprod {'yes' if m['sumprod'] else 'no'}"
