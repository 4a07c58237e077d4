"""What the hardware delivers right now: the same pure-CPU burn in 1 and in p processes.

``p`` burner processes wait on pipes. A measurement sends the same workload
to one of them, then to ``p`` at once, and times each from the first send to
the last answer. ``c(p) = p * t1 / tp`` is the number of cores' worth that
``p`` busy processes got: 2.0 on two idle cores, 1.1 when a neighbour on the
host takes the second one. Measurements alternate 1 and ``p`` so that a
change of host load hits both, and the profile takes them right before and
right after each worker count's run, and once after each of its timed steps.

Two workloads, both with no communication and no shared memory at all:

- :class:`ModelBurn`, the profiled model's own per-sample training step
  (forward, loss, backward) on fixed inputs. How much two copies of *this*
  code slow each other (shared caches, SMT siblings, clock boost) is
  hardware, so the profile's calibrated figures use it: whatever the
  training step loses beyond it is the software's (messages, waiting,
  the reduction, imbalance).
- :func:`burn`, a fixed mix of gathers, dot products and new float lists:
  a yardstick of the machine that does not depend on the model.

Example::

    with Calibrator(4, workload=ModelBurn(config, synthetic_data(config, 4))) as cal:
        pairs = cal.measure(2)            # [(t1, t2), ...]
        calibration_speedup(2, pairs)     # e.g. 1.97
"""

import math
import multiprocessing
import platform
import random
import signal
import statistics
import time
from itertools import repeat
from operator import add, itemgetter, mul

from ..errors import ParacnnError

#: Under PyPy every process's JIT compiles the kernels during its first samples: LeNet-5
#: reached a steady rate after 400 to 600 samples per process (``scripts/bench_kernels.py``
#: prints its warm-up), so profiles warm each process up on this many samples first.
JIT_WARMUP_SAMPLES = 640

#: work per burn, about 0.1 s on one core: see :func:`burn`.
BURN_ROUNDS = 50

#: seconds one burn of a :class:`ModelBurn` should take on one core.
BURN_SECONDS = 0.1

#: seconds a burner may take to start.
START_TIMEOUT = 120.0

_BURN_DATA = None


def _burn_data():
    """A 65,536-float list and 64 gathers of 256 random positions in it (built once per process)."""
    global _BURN_DATA
    if _BURN_DATA is None:
        rng = random.Random(0)
        x = [rng.random() for _ in range(65536)]
        _BURN_DATA = x, [itemgetter(*rng.sample(range(len(x)), 256)) for _ in range(64)]
    return _BURN_DATA


def burn(rounds=BURN_ROUNDS):
    """The fixed CPU workload, a training step in miniature: ``rounds`` x 64 x (a gather of
    256 random elements of a 65,536-float list, a 256-long dot product, 256 new floats).

    NOTE: it mixes what the kernels do (im2col gathers, C-level dot products,
    fresh float lists) because that decides how two vCPUs share a host core:
    on ours a tight float loop or a plain dot-product burn scales 1.97-2.02x
    over two processes while training scales 1.87x; this burn scales 1.85x.
    """
    x, gathers = _burn_data()
    w = [1e-3] * 256
    acc = 0.0
    for _ in range(rounds):
        for gather in gathers:
            patch = gather(x)
            acc = acc * 0.5 + sum(map(mul, patch, w))
            w = list(map(mul, map(add, w, patch), repeat(1e-3)))
    return acc


class ModelBurn:
    """The model's training step as a calibration workload: ``rounds`` samples, forward and backward.

    Args:
        config: the profiled :class:`~paracnn.config.Config`; each burner
            builds the model itself on its first burn, so nothing of it
            lands in the profiling parent's memory.
        data: a ``data:`` mapping whose training images the burn cycles
            through, e.g. :func:`~paracnn.profiling.runner.synthetic_data`
            (images of the config's shape, normalised like it, no files).
    """

    def __init__(self, config, data):
        self.config, self.data = config, data
        self.model = self.inputs = None

    def _build(self):
        from ..data import load_datasets

        train = load_datasets(self.data, seed=0).train
        self.model = self.config.build_model()
        self.inputs = [train.sample(i) for i in range(len(train))]

    def __call__(self, rounds):
        """Like one training task of ``rounds`` samples: zero, forward/backward each, collect."""
        if self.model is None:
            self._build()
        model, loss = self.model, 0.0
        model.zero_grad()
        for r in range(rounds):
            x, y = self.inputs[r % len(self.inputs)]
            loss += model.train_sample(x, y, seed=r)[0]
        model.get_grads()
        return loss


def burner_main(conn, workload=None):
    """A burner process: run ``workload`` (default :func:`burn`) ``rounds`` times per message.

    Stops when told ``None`` or when the pipe closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # NOTE: Ctrl-C is the parent's to handle
    workload = workload or burn
    try:
        conn.send("ready")
        while True:
            rounds = conn.recv()
            if rounds is None:
                return
            conn.send(workload(rounds))
    except (EOFError, OSError):
        pass  # the parent went away
    finally:
        conn.close()


class Calibrator:
    """``processes`` idle burners, ready to measure ``c(p)`` for any ``p <= processes``.

    Args:
        processes: the largest ``p`` to measure.
        start_method: as for the worker pool.
        rounds: work per burn; None for :data:`BURN_ROUNDS` of :func:`burn`, or
            as many as take :data:`BURN_SECONDS` of a ``workload``.
        repeats: 1-vs-p pairs per :meth:`measure`.
        workload: a picklable callable taking ``rounds`` (e.g. :class:`ModelBurn`);
            None for :func:`burn`.
    """

    def __init__(self, processes, start_method=None, rounds=None, repeats=3, workload=None):
        ctx = multiprocessing.get_context(start_method)
        self.rounds, self.repeats = rounds or BURN_ROUNDS, repeats
        self.conns, self.procs = [], []
        try:
            for i in range(processes):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=burner_main, args=(child, workload), name=f"paracnn-burner-{i}",
                                   daemon=True)
                proc.start()
                child.close()
                self.conns.append(parent)
                self.procs.append(proc)
            for conn in self.conns:
                if not conn.poll(START_TIMEOUT):
                    raise ParacnnError(f"a calibration process did not start within {START_TIMEOUT:.0f} s; "
                                       f"the machine may be overloaded: retry when it is quieter, or "
                                       f"profile fewer workers (--workers)")
                conn.recv()
            self._tune(processes, workload, rounds)
        except BaseException:
            self.close()
            raise

    def _tune(self, processes, workload, rounds):
        """Size a ``workload``'s burn to :data:`BURN_SECONDS` (unless ``rounds`` is given); warm up."""
        if workload is not None and rounds is None:
            self.rounds = 1
            self._burn(1)  # NOTE: untimed: the first burn builds the model (the others' warm up below)
            if platform.python_implementation() == "PyPy":
                # NOTE: sized and measured only once every burner's JIT has compiled the model.
                self.rounds = JIT_WARMUP_SAMPLES
                self._burn(processes)
                self.rounds = 1
            one = min(self._burn(1) for _ in range(3))
            self.rounds = max(1, math.ceil(BURN_SECONDS / max(1e-6, one)))
        self._burn(processes)  # warm-up: page in the code, wake the cores

    def _burn(self, p):
        start = time.perf_counter()
        for conn in self.conns[:p]:
            conn.send(self.rounds)
        for conn in self.conns[:p]:
            conn.recv()
        return time.perf_counter() - start

    def measure(self, p, repeats=None):
        """Pairs ``(t1, tp)``: seconds for the burn in 1 process, then in ``p`` at once."""
        return [(self._burn(1), self._burn(p)) for _ in range(repeats or self.repeats)]

    def close(self):
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()
        self.conns, self.procs = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def calibration_spread(p, pairs):
    """``(low, high, spread)``: the quartiles of the pairs' ``p * t1 / tp`` and their distance
    over the median (:func:`calibration_speedup`); ``(c, c, 0.0)`` for ``p == 1``
    or fewer than two pairs.

    A busy neighbour makes the hardware's share swing from pair to pair by
    tens of per cent, and then no single run's speedup can be trusted to
    better than that.
    """
    if p == 1 or len(pairs) < 2:
        c = calibration_speedup(p, pairs) if pairs else 1.0
        return c, c, 0.0
    low, _, high = statistics.quantiles((p * t1 / tp for t1, tp in pairs), n=4, method="inclusive")
    return low, high, (high - low) / calibration_speedup(p, pairs)


def calibration_speedup(p, pairs):
    """The median over ``(t1, tp)`` pairs of ``p * t1 / tp``; exactly 1.0 for ``p == 1``.

    Each pair is taken back to back, so its ratio cancels slow drifts of the
    host; the median drops the pairs a passing burst of other work hit.
    """
    if p == 1:
        return 1.0
    return statistics.median(p * t1 / tp for t1, tp in pairs)
