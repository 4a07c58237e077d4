"""The arithmetic of a scaling profile: speedup, efficiency, Karp–Flatt, the Amdahl fit.

With ``T1`` the serial step time and ``T(p)`` the step time on ``p`` workers::

    speedup      S(p) = T1 / T(p)
    efficiency   E(p) = S(p) / p
    Karp–Flatt   e(p) = (1/S - 1/p) / (1 - 1/p)        the serial fraction S implies
    Amdahl       S(p) = 1 / (f + (1 - f) / p)          f: the serial fraction of a step

On a shared machine ``p`` processes do not get ``p`` cores. The calibration
(:mod:`.calibrate`) measures ``c(p)``, the cores' worth that ``p`` busy
processes really get, and the *calibrated* figures put ``c(p)`` where ``p``
was: ``e = (1/S - 1/c) / (1 - 1/c)``, and the Amdahl fit of ``S`` against
``c``. That ``f`` belongs to the software; its predictions are for ``p``
dedicated cores.

The **fixed-cost model** predicts bigger machines from what each worker count
costs beyond its compute. With ``W`` the serial step's compute and ``F(p)``
the fixed cost of a step on ``p`` workers (its wall time minus the compute
the hardware allows, ``T(p) - W / c(p)``)::

    F(p) = F0 + F1 * p                       least squares over the measured p (1, 2, 4, 8)
    S(p) = T1 / (W / min(p, tasks) + F(p))   on p dedicated cores

``c(p)`` is the calibration at the number of workers that compute (the local
pool keeps no more busy than there are CPUs). ``F0`` is what every step pays
(the last micro-batch's imbalance, the update, the hand-overs); ``F1`` what
each further worker adds. A slope ``F1 < 0`` (noise, mostly) is not
extrapolated: past the largest count measured, ``F`` stays at its value there.

Example::

    f = amdahl_fit([(2, 1.96), (4, 3.77)])      # about 0.02
    amdahl_speedup(f, 64), 1 / f                # what 64 cores would give, and the ceiling
"""

#: core counts the Amdahl fit predicts a speedup for.
PREDICT_AT = (8, 16, 32, 64)

#: calibrated Karp–Flatt needs the hardware to give at least this many cores' worth;
#: closer to 1 it divides by (1 - 1/c) ~ 0 and amplifies noise without bound.
MIN_EFFECTIVE_CORES = 1.2


def karp_flatt(speedup, p):
    """The serial fraction ``(1/S - 1/p) / (1 - 1/p)``; None when ``p <= 1`` (undefined) or S unknown."""
    if speedup is None or speedup <= 0 or p is None or p <= 1:
        return None
    return (1.0 / speedup - 1.0 / p) / (1.0 - 1.0 / p)


def amdahl_speedup(f, p):
    """Amdahl's law: the speedup on ``p`` processors of work whose serial fraction is ``f``."""
    return 1.0 / (f + (1.0 - f) / p)


def amdahl_fit(points):
    """Least-squares serial fraction ``f`` of ``S(p) = 1 / (f + (1-f)/p)`` over ``(p, S)`` points.

    The squared error is taken on the speedups themselves. Points with
    ``p <= 1`` say nothing about ``f`` (Amdahl gives 1 whatever it is) and are
    ignored; None without any other point. ``f`` may come out negative when
    the speedups are superlinear (caches, noise), or above 1 when workers are
    slower than the serial step.
    """
    pts = [(float(p), float(s)) for p, s in points if p is not None and s is not None and p > 1]
    if not pts:
        return None

    def sse(f):
        return sum((s - amdahl_speedup(f, p)) ** 2 for p, s in pts)

    # NOTE: below every point's Karp–Flatt value all residuals share a sign (and
    # above every one, too), so the minimum lies between the smallest and the
    # largest; f must also keep f + (1-f)/p > 0 at every p, i.e. f > -1/(p-1).
    each = [karp_flatt(s, p) for p, s in pts]
    lo = max(min(each), max(-1.0 / (p - 1.0) for p, _ in pts) + 1e-12)
    hi = max(each)
    if hi <= lo:
        return hi
    grid = [lo + (hi - lo) * i / 400 for i in range(401)]
    best = min(range(len(grid)), key=lambda i: sse(grid[i]))
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    return _golden_min(sse, a, b)


def _golden_min(fn, a, b, tol=1e-15):
    """The minimum of a unimodal ``fn`` on ``[a, b]`` by golden-section search."""
    ratio = (5 ** 0.5 - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = fn(c), fn(d)
    for _ in range(200):
        if b - a <= tol * max(1.0, abs(a) + abs(b)):
            break
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = fn(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = fn(d)
    return (a + b) / 2


def task_bound(p, tasks):
    """Workers' worth that ``tasks`` equal tasks per step can use: ``tasks / ceil(tasks / p)``."""
    return tasks / -(-tasks // p)


def amdahl_summary(f, tasks=None):
    """``serial_fraction``, the ``ceiling`` 1/f and predicted speedups at :data:`PREDICT_AT` cores.

    With ``tasks`` (micro-batches per step), ``predicted_speedup_task_bound``
    also counts that ``p`` workers share ``tasks`` equal tasks: beyond
    ``tasks`` workers, the extra ones idle. A negative ``f`` (superlinear
    points) predicts as 0: no ceiling (None).
    """
    if f is None:
        return {"serial_fraction": None, "ceiling": None, "predicted_speedup": {},
                "predicted_speedup_task_bound": {}}
    g = max(0.0, f)
    out = {"serial_fraction": f, "ceiling": 1.0 / g if g > 0 else None,
           "predicted_speedup": {str(p): amdahl_speedup(g, p) for p in PREDICT_AT},
           "predicted_speedup_task_bound": {}}
    if tasks:
        out["predicted_speedup_task_bound"] = {str(p): amdahl_speedup(g, task_bound(p, tasks))
                                               for p in PREDICT_AT}
    return out


def amdahl_report(runs, tasks=None):
    """The Amdahl fits of a profile's runs: on raw speedups, and against calibrated cores.

    ``fit_on`` names the one whose figures are copied to the top level: the
    calibrated fit whenever the calibration gave a usable point (the software's
    own serial fraction), else the raw one. ``tasks``: micro-batches per step.
    """
    raw = amdahl_fit([(r["workers"], r["speedup"]) for r in runs])
    cal_points = [(r["calibration_speedup"], r["speedup"]) for r in runs
                  if r.get("calibration_speedup") and r["calibration_speedup"] >= MIN_EFFECTIVE_CORES]
    cal = amdahl_fit(cal_points)
    out = {"raw": amdahl_summary(raw, tasks), "calibrated": amdahl_summary(cal, tasks)}
    out["fit_on"] = "calibrated" if cal is not None else "raw"
    out.update(out[out["fit_on"]])
    out["tasks_per_step"] = tasks
    return out


def run_figures(workers, step_seconds, serial_seconds, calibration):
    """The derived columns of one run: speedup, efficiency, Karp–Flatt (raw, calibrated), ratios."""
    s = serial_seconds / step_seconds
    return {"speedup": s, "efficiency": s / workers, "karp_flatt": karp_flatt(s, workers),
            "calibration_speedup": calibration,
            "relative_efficiency": s / calibration if calibration else None,
            "karp_flatt_calibrated": (karp_flatt(s, calibration)
                                      if calibration and calibration >= MIN_EFFECTIVE_CORES else None)}


def linear_fit(points):
    """Least-squares ``(a, b)`` of ``y = a + b * x`` over ``(x, y)`` points; ``(mean y, 0)`` for one x."""
    n = len(points)
    if not n:
        return None, None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return my, 0.0
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def fixed_cost_model(serial, runs, tasks=None, cores=None):
    """The fixed-cost model (see the module docstring) of a profile's ``serial`` summary and ``runs``.

    ``cores``: the usable CPUs. The local pool keeps at most that many workers busy,
    so a run with more workers is held to the calibration of the run at ``cores``
    workers (what that many computing processes got), when the profile has one.

    Returns ``{"compute_seconds": W, "serial_seconds": T1, "per_step_seconds": F0,
    "per_worker_seconds": F1, "measured": {p: F(p)}, "predicted_speedup": {p: S(p)}}``;
    the prediction is empty when no run had a calibration (then ``c(p)`` is unknown).
    """
    w, t1 = serial["compute_seconds"], serial["step_seconds"]
    hardware = {r["workers"]: r.get("calibration_speedup") for r in runs}
    hardware[1] = hardware.get(1) or 1.0
    measured = {}
    for r in runs:
        p = r["workers"]
        busy = min(p, int(cores)) if cores and int(cores) in hardware else p
        c = hardware.get(busy)
        if c:
            measured[p] = r["step_seconds"] - w / min(c, busy)
    f0, f1 = linear_fit(sorted(measured.items()))
    out = {"compute_seconds": w, "serial_seconds": t1, "per_step_seconds": f0, "per_worker_seconds": f1,
           "measured": {str(p): v for p, v in sorted(measured.items())}, "predicted_speedup": {}}
    if f0 is not None:
        for p in PREDICT_AT:
            cores = task_bound(p, tasks) if tasks else p
            # NOTE: a fixed cost that falls with more workers (noise, mostly) is not
            # extrapolated past the largest count measured
            at = p if f1 >= 0 else min(p, max(measured))
            out["predicted_speedup"][str(p)] = t1 / (w / cores + max(0.0, f0 + f1 * at))
    return out
