"""``paracnn profile``: CPU-scaling profiles that separate software from hardware.

On a shared machine raw timings lie, so a profile measures three things side
by side: the serial step (an in-process trainer, no pool), the step on ``p``
workers, and what ``p`` processes running the model's own training step (no
communication) get from the hardware at that moment; a fixed pure-CPU burn,
the same for every model, is measured too, as a yardstick between machines.
From them:

- ``speedup`` = T_serial / T(p), ``efficiency`` = speedup / p, and the
  Karp–Flatt serial fraction (:mod:`.scaling`);
- ``calibration_speedup`` (cores' worth the hardware gave, :mod:`.calibrate`)
  and ``relative_efficiency`` = speedup / calibration_speedup;
- an Amdahl fit, against the calibrated cores and against raw worker counts,
  with predicted speedups at 8 to 64 cores and the ceiling 1/f.

The result (``--json``) holds ``config``, ``dataset``, ``synthetic``,
``num_params``, ``serial`` (the baseline's medians), ``amdahl``, ``machine``,
``warnings``, with ``--layers`` ``layers``, and ``runs``, one object per
worker count:

- ``workers``, ``samples_per_second``, ``speedup``, ``paired_serial_seconds``
  and ``paired_speedup``, ``efficiency``, ``karp_flatt``;
- ``calibration_speedup``, ``relative_efficiency``, ``karp_flatt_calibrated``,
  the raw ``calibration_seconds``, their quartiles ``calibration_range`` and
  ``calibration_spread`` (the quartiles' distance over the median: above 10 %
  the host was busy and a warning says so), and the fixed burn's
  ``calibration_fixed_seconds`` and ``calibration_speedup_fixed``;
- the time split ``step_seconds``, ``compute_seconds``, ``broadcast_seconds``,
  ``reduce_update_seconds``, ``wait_seconds``, ``tail_seconds`` (the part of
  the wait a worker idled after its last micro-batch: load imbalance) and
  ``presum_seconds`` (the part of the gradient sum the parent did during the
  wait);
- ``cpu_percent``, ``cpu_seconds``, ``cpu_work_ratio``, ``parent_rss_mb``,
  ``worker_uss_mb``, ``total_pss_mb`` and ``weights_match``.

The modules: :mod:`.runner` (the measurements), :mod:`.baseline` (the serial
step's own process), :mod:`.scaling` (the arithmetic), :mod:`.calibrate`,
:mod:`.machine` (usable CPUs, cgroup quotas), :mod:`.layers` (per-layer
times) and :mod:`.report` (table, JSON, CSV, plot).

Example::

    from paracnn.config import load_config
    from paracnn.profiling import profile, format_profile
    result = profile(load_config("configs/lenet.yaml"), [1, 2], steps=5, synthetic=True)
    print(format_profile(result))
"""

import sys

from .layers import format_layer_table, layer_table, time_layers
from .machine import cgroup_cpu_quota, oversubscription_warnings, usable_cpus
from .report import check_matplotlib, format_profile, require_matplotlib, write_csv, write_json, write_plot
from .runner import parse_workers, profile, synthetic_config
from .scaling import amdahl_fit, amdahl_report, amdahl_speedup, karp_flatt

__all__ = ["profile", "profile_from_cli", "format_profile", "write_json", "write_csv", "write_plot",
           "parse_workers", "synthetic_config", "amdahl_fit", "amdahl_report", "amdahl_speedup",
           "karp_flatt", "usable_cpus", "cgroup_cpu_quota", "oversubscription_warnings",
           "time_layers", "layer_table", "format_layer_table", "check_matplotlib", "require_matplotlib"]


def _progress(line):
    print(line, file=sys.stderr, flush=True)


def profile_from_cli(args, config):
    """``paracnn profile``: run, print the table, write the files asked for; return 0."""
    workers = parse_workers(args.workers, config.data["train"])
    if args.plot:
        check_matplotlib()  # NOTE: fail before minutes of measuring, not after
    result = profile(config, workers, steps=args.steps, start_method=args.start_method,
                     data_dir=args.data_dir, layers=args.layers, synthetic=args.synthetic,
                     log=_progress)
    print(format_profile(result))
    for path, write in ((args.json, write_json), (args.csv, write_csv), (args.plot, write_plot)):
        if path:
            write(result, path)
            print(f"wrote {path}")
    return 0
