"""Every file paracnn writes goes through here: whole files atomically, logs by appending.

:func:`write_atomic` writes a new file under a random, exclusively created
name in the target's own folder (``O_CREAT | O_EXCL``, and ``O_NOFOLLOW``
where the platform has it, so a link planted there is never followed),
flushes and fsyncs it, then ``os.replace``-s it onto the target, which
replaces a link at the target rather than writing through it, and fsyncs the
folder. A reader sees the old file or the new one, never half; a crash or a
full disk leaves the old one intact. It refuses to replace a file the same
command reads (``inputs``), and with ``overwrite=False`` any existing file.

:func:`append_line` adds one line to a log (``metrics.jsonl``,
``steps.jsonl``), opened without following a link.

Every file gets one mode, :data:`FILE_MODE` less the process's umask, as any
file a user creates does: ``0644`` under the usual umask ``022``, and private
(``0600``) under ``umask 077``. Checkpoints, metrics, plots and exports alike.

Example::

    write_atomic(run_dir / "eval.json", json.dumps(result), inputs=[checkpoint])
"""

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import ParacnnError

#: the mode of every file paracnn writes (run folders, exports, plots), before the umask.
FILE_MODE = 0o666
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class CannotWrite(ParacnnError):
    """A file cannot be written where it was asked for: a missing folder, an input, an existing OUT."""


def write_atomic(path, data, *, inputs=(), overwrite=True):
    """Write ``data`` (``str`` as UTF-8, or bytes) to ``path`` atomically; return ``path``.

    Args:
        path: the file to write; its folder is created if missing.
        data: the whole content.
        inputs: files this command reads; ``path`` may not be one of them.
        overwrite: False refuses an existing ``path`` (checked again, atomically, at the end).

    Raises:
        CannotWrite: ``path`` is an input, or exists and ``overwrite`` is False.
        OSError: the write itself failed (permissions, a full disk); nothing was changed.
    """
    path = Path(path)
    refuse_inputs(path, inputs)
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    # NOTE: mkstemp opens with O_CREAT | O_EXCL (and O_NOFOLLOW where it exists), mode 0600.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), FILE_MODE & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _land(tmp, path, overwrite)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            # NOTE: named by its target: the temporary name means nothing to the user
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    _fsync_dir(path.parent)
    return path


def _land(tmp, path, overwrite):
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # NOTE: link() fails if the target appeared meanwhile, which replace() would clobber.
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # a file system without hard links: the check above must do
        if os.path.lexists(path):
            raise _exists(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _exists(path):
    return CannotWrite(f"{path} already exists; choose another name, or pass --overwrite to replace it")


def refuse_inputs(path, inputs):
    """Raise :class:`CannotWrite` if ``path`` is one of ``inputs`` (the same file, by any name)."""
    for source in inputs:
        try:
            same = os.path.samefile(path, source)
        except OSError:  # either is missing: they cannot be the same file
            same = False
        if same:
            alias = "" if str(path) == str(source) else f" (the same file as {source})"
            raise CannotWrite(f"{path} is an input of this command{alias}; writing it would destroy "
                              f"what is being read: choose another output")


def append_line(path, line):
    """Append ``line`` (a ``str`` without its newline) to the log ``path``, creating it if missing."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "a", encoding="utf-8", newline="") as f:
        f.write(line + "\n")


def check_can_write(path, *, inputs=(), overwrite=True):
    """Refuse an output path that cannot be written, before the work that produces it.

    Raises :class:`CannotWrite` when it is one of ``inputs``, its folder is missing or
    is not a folder, the path is a folder, or (``overwrite=False``) the file exists.
    """
    path = Path(path)
    refuse_inputs(path, inputs)
    parent = path.parent
    if not parent.is_dir():
        why = "is not a folder" if parent.exists() else "does not exist"
        raise CannotWrite(f"cannot write {path}: the folder {parent} {why}; create it first, or "
                          f"choose another path")
    if path.is_dir():
        raise CannotWrite(f"cannot write {path}: it is a folder; give a file name")
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    return path


def umask():
    """The process's umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # NOTE: elsewhere the only way is to set it and put it back; another thread creating a
    # file in between would get mode 0666, so this is the fallback, not the rule.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # NOTE: some platforms (Windows) cannot open folders; rename is enough there.
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
