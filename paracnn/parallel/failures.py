"""How a worker's failure reaches the user, for the local pool and the Ray backend alike.

A worker that dies is described by how it ended (:func:`describe_exit`);
the pool or the backend replaces it and, after too many deaths in a row,
raises :class:`WorkerError`. A task that raises is not retried: the worker
sends its traceback as text, which travels as a :class:`RemoteTraceback`
behind a :class:`WorkerTaskError` naming the layer.
"""

import signal

from ..errors import ParacnnError, TaskError


class WorkerError(ParacnnError):
    """Workers kept dying, or could not start. Names the PID and how it ended."""

    exit_code = 3


class WorkerTaskError(TaskError, RuntimeError):
    """A task raised inside a worker (a bug, e.g. in a layer); names the layer and the exception.

    The worker's traceback is the ``__cause__`` (a :class:`RemoteTraceback`), which
    ``paracnn --debug`` prints.
    """


class RemoteTraceback(Exception):
    """The text of a traceback from a worker process."""

    def __str__(self):
        return self.args[0]


def describe_exit(exitcode):
    """``'killed by signal 9 (SIGKILL)'`` or ``'exited with status 1'``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-exitcode} ({name})"
    return f"exited with status {exitcode}"
