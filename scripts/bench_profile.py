"""CPU scaling of LeNet-5 at batch 64: ``paracnn profile`` with a summary against the targets.

Usage::

    python scripts/bench_profile.py [--workers 1,2] [--steps 8] [--runs 3] [--set KEY=VALUE]
                                    [--backend local,ray] [--json FILE] [--plot FILE]

Profiles ``configs/lenet.yaml`` at batch 64 on synthetic 1x28x28 images, or on
MNIST when ``PARACNN_DATA_DIR`` is set, ``--runs`` times. For each run it
prints the profile table, then a summary: relative efficiency and Karp–Flatt
serial fraction at the largest worker count, the Amdahl ceiling, and the
reduce + update time per step; at the end, the median of each figure over
the runs (a shared host can disturb any single run by several per cent).
With ``--backend local,ray`` each run profiles the local pool, then Ray
actors (a local Ray, or ``--set train.ray_address=...``), under the same host
load, and the medians are given per backend. Targets on a 2-vCPU machine: relative efficiency >= 95 % at 2 workers and a
(calibrated) Karp–Flatt serial fraction <= 1 %.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

from paracnn.config import load_config
from paracnn.errors import ParacnnError
from paracnn.profiling import check_matplotlib, format_profile, parse_workers, profile, write_json, write_plot

REPO = Path(__file__).resolve().parents[1]


def summary(result):
    """The lines that matter, checked against the targets."""
    s, last = result["serial"], result["runs"][-1]
    a = result["amdahl"]
    p = last["workers"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f} %"

    parallel_ms = 1e3 * last["reduce_update_seconds"]
    serial_ms = 1e3 * s["reduce_update_seconds"]
    presum_ms = 1e3 * last.get("presum_seconds", 0.0)
    ceiling = "none" if a["ceiling"] is None else f"{a['ceiling']:.0f}x"
    lines = [
        f"lenet5 batch {result['machine']['batch_size']}: serial {s['samples_per_second']:.1f} samples/s "
        f"({1e3 * s['step_seconds']:.0f} ms/step); {p} workers {last['samples_per_second']:.1f} samples/s, "
        f"speedup {last['speedup']:.2f}, hardware gave {last['calibration_speedup']:.2f} cores' worth",
        f"relative efficiency at {p} workers: {pct(last['relative_efficiency'])} (target >= 95 %); "
        f"against the interleaved serial steps: {pct(last['paired_speedup'] / last['calibration_speedup'])}",
        f"Karp-Flatt serial fraction at {p} workers: raw {pct(last['karp_flatt'])}, calibrated "
        f"{pct(last['karp_flatt_calibrated'])} (target <= 1 %)",
        f"Amdahl ({a['fit_on']} fit): f = {pct(a['serial_fraction'])}, ceiling {ceiling}, "
        + ", ".join(f"{k} cores {v:.1f}x" for k, v in a["predicted_speedup"].items()),
        f"reduce + update per step: {serial_ms:.1f} ms in-process, {parallel_ms:.1f} ms at {p} workers "
        + ("(on the Ray driver" if result["machine"].get("backend") == "ray" else
           f"(sliced across them; the parent pre-summed finished slots for {presum_ms:.1f} ms of the wait "
           f"before") + f") = {100 * parallel_ms / 1e3 / s['step_seconds']:.2f} % of the serial step",
        f"wait per step at {p} workers: {1e3 * last['wait_seconds']:.1f} ms, of it "
        f"{1e3 * last['tail_seconds']:.1f} ms idle tail (load imbalance; the rest is messages)",
        "fixed cost per step (step - compute): serial " + f"{1e3 * s['fixed_seconds']:.2f} ms, "
        + ", ".join(f"{r['workers']} workers {1e3 * r['fixed_seconds']:.2f} ms "
                    f"(rel.eff {pct(r['relative_efficiency'])})" for r in result["runs"]),
        "fixed-cost model, predicted speedup on dedicated cores: "
        + ", ".join(f"{k}: {v:.1f}x" for k, v in result["fixed_cost"]["predicted_speedup"].items()),
    ]
    return lines


#: the figures of the largest worker count that the final line gives medians of.
MEDIAN_KEYS = (("speedup", "speedup {:.3f}"), ("calibration_speedup", "hw x {:.3f}"),
               ("relative_efficiency", "relative efficiency {:.2%}"),
               ("karp_flatt", "Karp-Flatt raw {:.2%}"), ("karp_flatt_calibrated", "calibrated {:.2%}"),
               ("reduce_update_seconds", "reduce + update {:.4f} s"),
               ("presum_seconds", "pre-summed during wait {:.4f} s"), ("wait_seconds", "wait {:.4f} s"),
               ("tail_seconds", "of it idle tail {:.4f} s"), ("fixed_seconds", "fixed cost {:.4f} s"),
               ("result_wait_seconds", "result wait {:.4f} s"))


def medians_lines(results):
    """One line per worker count: the median over ``results`` of each of :data:`MEDIAN_KEYS`
    (prefixed with the backend when the results say which), then the predictions' medians."""
    serial = statistics.median(r["serial"]["samples_per_second"] for r in results)
    fixed = statistics.median(r["serial"]["fixed_seconds"] for r in results)
    backend = f"{results[0]['backend']}: " if results[0].get("backend") else ""
    lines = [f"{backend}median of {len(results)} runs: serial {serial:.1f} samples/s, fixed cost "
             f"{1e3 * fixed:.2f} ms"]
    for i, run in enumerate(results[0]["runs"]):
        same = [r["runs"][i] for r in results]
        parts = []
        for key, fmt in MEDIAN_KEYS:
            values = [x[key] for x in same if x.get(key) is not None]
            if values:
                parts.append(fmt.format(statistics.median(values)))
        lines.append(f"{backend}  {run['workers']} workers: " + ", ".join(parts))
    for label, key in (("calibrated Amdahl", "amdahl"), ("fixed-cost model", "fixed_cost")):
        pred = {k: statistics.median(r[key]["predicted_speedup"].get(k, 0.0) for r in results)
                for k in results[0][key]["predicted_speedup"]}
        lines.append(f"{backend}  {label}, predicted speedup: " + ", ".join(f"{k}: {v:.1f}x" for k, v in pred.items()))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per worker count (default 8)")
    parser.add_argument("--start-method", choices=("fork", "spawn", "forkserver"))
    parser.add_argument("--runs", type=int, default=3, help="profiles to run; medians at the end (default 3)")
    parser.add_argument("--json", metavar="FILE", help="write {'profiles': [one profile per run]}")
    parser.add_argument("--plot", metavar="FILE")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, as in paracnn train (e.g. train.micro_batch=4)")
    parser.add_argument("--backend", default="local", metavar="LIST",
                        help="backends to profile in each run: local, ray or local,ray (default local)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if args.plot:
        try:
            check_matplotlib()
        except ParacnnError as e:
            sys.exit(f"bench_profile: {e}")
    real = bool(os.environ.get("PARACNN_DATA_DIR"))
    try:
        configs = {b: load_config(REPO / "configs/lenet.yaml", ["train.batch_size=64", f"train.backend={b}",
                                                               *args.set]) for b in backends}
    except ParacnnError as e:
        sys.exit(f"bench_profile: {e}")
    results = []
    for i in range(max(1, args.runs)):
        if args.runs > 1:
            print(f"\n=== run {i + 1} of {args.runs}", flush=True)
        for backend, config in configs.items():
            if len(backends) > 1:
                print(f"\n--- backend {backend}", flush=True)
            result = profile(config, parse_workers(args.workers), steps=args.steps,
                             start_method=args.start_method, synthetic=not real,
                             log=lambda line: print(line, file=sys.stderr, flush=True))
            result["backend"] = backend
            results.append(result)
            print(format_profile(result))
            print()
            print("\n".join(summary(result)), flush=True)
    if len(results) > len(backends):
        print()
        for backend in backends:
            print("\n".join(medians_lines([r for r in results if r["backend"] == backend])))
    if args.json:
        write_json({"profiles": results}, args.json)
    if args.plot:
        write_plot(results[-1], args.plot)


if __name__ == "__main__":
    main()
