"""How many worker processes: ``--workers auto``, and the warnings about too many.

``auto`` is min(usable CPUs, micro-batches per step), at least 1. A worker
without a CPU of its own takes turns with another, which costs time and wins
nothing; a worker without a micro-batch sits idle. Usable CPUs are the CPUs
this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``),
capped by a cgroup CPU quota (a container's ``--cpus``), counted exactly as
``paracnn profile`` counts them (:func:`paracnn.profiling.machine.usable_cpus`).

``train``, ``evaluate`` and ``profile`` resolve and check their worker counts
here, so the three say the same thing in the same words. The weights never
depend on the worker count, so ``auto`` can pick a different number on
another machine, or when a run is resumed, without changing the result.

Example::

    n = choose_workers("auto", config.data["train"], log=print)   # 2 on a 2-CPU machine
    for line in worker_warnings(8, config.data["train"]):
        print("warning:", line)
"""

import math

from .errors import ParacnnError
from .limits import MAX_WORKERS

#: the value of ``--workers`` / ``train.workers`` that picks the count for the machine.
AUTO = "auto"


def usable_cpus():
    """The CPU facts: ``{"usable", "affinity", "cgroup_quota", ...}``."""
    # NOTE: imported here, not at the top: paracnn.profiling imports this module.
    from .profiling.machine import usable_cpus as machine_cpus

    return machine_cpus()


def tasks_per_step(train_cfg):
    """Micro-batches in a full step: ``ceil(batch_size / micro_batch)``, the most workers a step can use."""
    from .parallel import auto_micro_batch

    batch = train_cfg["batch_size"]
    return math.ceil(batch / (train_cfg.get("micro_batch") or auto_micro_batch(batch)))


def auto_workers(train_cfg, cpus=None):
    """The count ``auto`` stands for: min(usable CPUs, micro-batches per step), at least 1."""
    cpus = cpus or usable_cpus()
    return max(1, min(int(cpus["usable"]), tasks_per_step(train_cfg)))


def resolve_workers(value, train_cfg, cpus=None):
    """``value`` as a number: ``auto`` resolved, None meaning ``train.workers`` (itself maybe ``auto``)."""
    if value is None:
        value = train_cfg["workers"]
    return auto_workers(train_cfg, cpus) if value == AUTO else value


def check_worker_counts(counts, flag="--workers"):
    """Refuse any count in ``counts`` past :data:`~paracnn.limits.MAX_WORKERS`, before a process starts.

    ``train`` and ``evaluate`` hold ``train.workers`` to the same bound through the schema;
    ``profile`` takes a list of counts, checked here.
    """
    over = [n for n in counts if n > MAX_WORKERS]
    if over:
        raise ParacnnError(f"{flag} asks for {max(over):,} worker processes, more than paracnn's limit "
                           f"of {MAX_WORKERS}; each worker is a Python process, so give counts up to "
                           f"the usable CPUs (--workers auto picks them)")
    return counts


def oversubscription_warning(counts, cpus, advice=None):
    """One line when any count in ``counts`` exceeds the usable CPUs (and 1), else None."""
    over = [p for p in counts if p > max(1, cpus["usable"])]
    if not over:
        return None
    from .profiling.machine import describe_cpus

    return (f"{', '.join(map(str, over))} workers exceed the {describe_cpus(cpus)}: the extra "
            f"workers take turns on the CPUs, so speedup cannot pass {cpus['usable']:g}"
            + (f"; {advice}" if advice else ""))


def idle_warning(workers, tasks, holding, advice):
    """One line when ``workers`` exceeds ``tasks``, the micro-batches of a step or the evaluation chunks.

    ``holding`` says what there is too little of, e.g. ``"a step has only 8 micro-batches"``.
    """
    if workers <= tasks:
        return None
    idle = workers - tasks
    verb = "sits" if idle == 1 else "sit"
    return f"{workers} workers but {holding}, so {idle} of them {verb} idle; {advice}"


def worker_warnings(workers, train_cfg, cpus=None):
    """The oversubscription and idle-worker warnings for training on ``workers`` processes."""
    if not workers:
        return []  # in-process: nothing to oversubscribe
    cpus = cpus or usable_cpus()
    tasks = tasks_per_step(train_cfg)
    # NOTE: Ray actors run on the cluster's CPUs, which this machine cannot count.
    on_ray = train_cfg.get("backend") == "ray"
    advice = ("use at most that many actors" if on_ray
              else f"use --workers auto ({auto_workers(train_cfg, cpus)} here)")
    lines = [None if on_ray else oversubscription_warning([workers], cpus, advice),
             idle_warning(workers, tasks, f"a step has only {tasks} micro-batches",
                          f"{advice}, a larger train.batch_size or a smaller train.micro_batch")]
    return [line for line in lines if line]


def choose_workers(value, train_cfg, log=print, cpus=None):
    """Resolve ``value`` (see :func:`resolve_workers`), log each warning once, return the count."""
    cpus = cpus or usable_cpus()
    workers = resolve_workers(value, train_cfg, cpus)
    for line in worker_warnings(workers, train_cfg, cpus):
        log(f"warning: {line}")
    return workers


def evaluation_chunks(samples, eval_batch=None):
    """The evaluation tasks of a split of ``samples``: the most workers evaluating it can use."""
    from .parallel.plan import eval_chunks

    return len(eval_chunks(samples, eval_batch))


def evaluation_warnings(workers, split_sizes, eval_batch=None, cpus=None, on_ray=False):
    """The oversubscription and idle-worker warnings for evaluating ``{split: samples}``.

    ``on_ray``: Ray actors run on the cluster's CPUs, so this machine's count says nothing.
    """
    if not workers:
        return []
    cpus = cpus or usable_cpus()
    split = max(split_sizes, key=split_sizes.get)
    samples = split_sizes[split]
    chunks = evaluation_chunks(samples, eval_batch)
    lines = [None if on_ray else oversubscription_warning([workers], cpus, "use --workers auto"),
             idle_warning(workers, chunks, f"the {split} set splits into only {chunks} evaluation "
                                           f"chunk{'s' if chunks != 1 else ''}",
                          f"use --workers {chunks} or a smaller train.eval_batch")]
    return [line for line in lines if line]
