"""The baseline process: the in-process serial step, in a child of its own.

It holds a :class:`~paracnn.training.step.Trainer` with ``workers=0`` (no pool) and
answers the profile's messages::

    ("reset",)              back to the initial weights, optimiser state and batch order
    ("step",)               one step; answers its timings plus CPU percent and seconds
    ("state",)              the weights' hash and the process's memory figures
    ("layers", n, repeats)  the per-layer table over the first n training samples
    ("stop",)

Errors come back as ``("error", "user" | "bug", text)``: a ParacnnError's
message (a missing dataset, say) or a traceback.
"""

import multiprocessing
import signal
import traceback

from ..errors import ParacnnError
from ..monitor import ResourceMonitor
from ..training.step import Trainer, weights_hash
from .layers import layer_table

#: seconds the baseline process may take to load its data and build the model.
BASELINE_TIMEOUT = 600.0


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


def baseline_main(conn, config, data_dir):
    """The baseline process: an in-process trainer answering ``reset``, ``step``, ``state``, ``layers``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # NOTE: Ctrl-C is the parent's to handle
    try:
        with Trainer(config, workers=0, data_dir=data_dir, log=_silent) as trainer:
            initial = {"weights": list(trainer.weights), "optimizer": trainer.optimizer_state(),
                       "step": 0}
            stream = batch_stream(trainer)
            monitor = ResourceMonitor(list)
            conn.send(("ready", {"num_params": len(trainer.weights),
                                 "micro_batch": trainer.engine.micro_batch,
                                 "tasks_per_step": trainer.engine.slots}))
            while True:
                msg = conn.recv()
                if msg[0] == "reset":
                    trainer.load_state(initial)
                    stream = batch_stream(trainer)
                    conn.send(("ok", None))
                elif msg[0] == "step":
                    monitor.start()
                    s = trainer.step(*next(stream))
                    conn.send(("ok", with_cpu(s, monitor)))
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


def with_cpu(step, monitor):
    """``step`` plus the CPU percent and CPU seconds of the processes ``monitor`` watches."""
    percent = monitor.cpu_percent()
    return {**step.as_dict(), "cpu_percent": percent, "cpu_seconds": percent / 100.0 * step.seconds}
