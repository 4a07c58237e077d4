"""Finding a dataset's files on disk, and downloading them when they are not there.

Folders are searched in this order; the first holding all four ``.gz`` files wins:

1. an explicit ``data_dir`` (CLI ``--data-dir``, config ``data.dir``), as
   ``DIR/<name>/`` or flat as ``DIR/``;
2. ``$PARACNN_DATA_DIR/<name>/``;
3. the user cache, ``<cache>/<name>/``, where ``<cache>`` is
   ``$PARACNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/paracnn``, else
   ``~/.cache/paracnn``;
4. system folders (:data:`~paracnn.data.checksums.SYSTEM_DIRS`, e.g. Debian's
   ``/usr/share/datasets/fashion-mnist``).

Otherwise the missing files are downloaded into the cache from ``mirror``,
else ``$PARACNN_MIRROR``, else the dataset's default mirror (a checkpoint's
own ``data.mirror`` is never followed: see :func:`paracnn.checkpoint.load_checkpoint`).
Each file is streamed into a private temporary folder, never more than
:data:`~paracnn.limits.MAX_DOWNLOAD_BYTES`, is checked (gzip, IDX magic, size,
SHA-256, all while decompressing it as a stream) and only then
``os.replace``-d into place, so an interrupted or failed download never leaves
a file that looks complete, nor a cache folder it created.
"""

import contextlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..limits import CHUNK_BYTES, MAX_DOWNLOAD_BYTES
from .checksums import FILES, MIRRORS, SYSTEM_DIRS, expected_sha256
from .idx import IMAGE_DIMS, LABEL_DIMS, read_idx

log = logging.getLogger(__name__)

#: Seconds a stalled connection may hang before the download gives up.
TIMEOUT = 60


def cache_dir():
    """The user cache folder: ``$PARACNN_CACHE_DIR``, ``$XDG_CACHE_HOME/paracnn`` or ``~/.cache/paracnn``."""
    if os.environ.get("PARACNN_CACHE_DIR"):
        return Path(os.environ["PARACNN_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "paracnn"


def candidate_folders(name, data_dir=None):
    """The folders searched for dataset ``name``, in order (they need not exist)."""
    folders = []
    if data_dir:
        folders += [Path(data_dir).expanduser() / name, Path(data_dir).expanduser()]
    if os.environ.get("PARACNN_DATA_DIR"):
        folders.append(Path(os.environ["PARACNN_DATA_DIR"]).expanduser() / name)
    folders.append(cache_dir() / name)
    folders += [Path(p) for p in SYSTEM_DIRS.get(name, ())]
    return folders


def find_dataset_files(name, data_dir=None):
    """Find a folder holding all four files of dataset ``name``.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or any name laid out the same way.
        data_dir: an explicit folder, searched first (see the module docstring).

    Returns:
        ``{file name: Path}`` for the four :data:`~paracnn.data.checksums.FILES`,
        or None if no folder holds them all. The files are not opened.
    """
    for folder in candidate_folders(name, data_dir):
        paths = {f: folder / f for f in FILES}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def ensure_dataset(name, data_dir=None, mirror=None, download=True, checksums=None):
    """Return a folder holding all four files of ``name``, downloading them if need be.

    Args:
        name: the dataset name.
        data_dir: an explicit folder, searched first.
        mirror: base URL to download from; None means ``$PARACNN_MIRROR`` or the
            dataset's default (:data:`~paracnn.data.checksums.MIRRORS`).
        download: if False, a dataset that is not on disk is an error.
        checksums: ``{file name without .gz: SHA-256}`` that downloads must
            match; None means the official table for ``name``.

    Returns:
        The folder, as a ``Path``.

    Raises:
        DataError: not found and downloading is off, or a download failed or
            produced a bad file. The message lists where it looked.
    """
    found = find_dataset_files(name, data_dir)
    if found:
        return found[FILES[0]].parent
    if not download:
        raise DataError(f"{name}: {_not_found(name, data_dir)}; set PARACNN_DATA_DIR to a folder "
                        f"holding {name}/ with these files, pass --data-dir, or set data.download: true")
    if data_dir:
        log.warning("%s: %s holds no complete copy; downloading into the cache", name, data_dir)
    folder = cache_dir() / name
    url = _mirror(name, mirror)
    for fname in FILES:
        if not (folder / fname).is_file():
            download_file(fname, folder, url, expected_sha256(name, fname, checksums))
    return folder


def download_file(fname, folder, mirror, sha256=None):
    """Download ``mirror + fname`` into ``folder``, checking it before it lands.

    Args:
        fname: one of the four standard file names.
        folder: created if missing.
        mirror: base URL (a missing trailing ``/`` is added).
        sha256: expected SHA-256 of the decompressed file, or None.

    Returns:
        The path of the downloaded file.

    Raises:
        DataError: the download failed, the file is not the expected IDX file
            (for example an HTML error page), or its URL is plain http and no
            ``sha256`` vouches for it; nothing is left behind.
    """
    folder = Path(folder)
    url = mirror + fname
    advice = (f"check data.mirror / PARACNN_MIRROR (now {mirror}), or download {fname} yourself "
              f"into {folder} or a folder named by PARACNN_DATA_DIR")
    if sha256 is None and not url.lower().startswith("https://"):
        # NOTE: over plain http only the checksum vouches for what arrives (the default
        # fashion-mnist mirror serves http only, and its files have official hashes).
        raise DataError(f"{url}: refusing to download over plain http a file whose SHA-256 is not "
                        f"known; use an https mirror, or download {fname} yourself into {folder}")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".download-", dir=folder)
    except OSError as e:
        raise DataError(f"{folder}: cannot create the download folder ({e}); "
                        f"set PARACNN_CACHE_DIR to a writable folder") from None
    try:
        log.info("downloading %s to %s", url, folder)
        path = Path(tmp) / fname
        try:
            _fetch(url, path)
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise DataError(f"{url}: download failed ({e}); {advice}") from None
        ndims = LABEL_DIMS if "labels" in fname else IMAGE_DIMS
        try:
            read_idx(path, ndims, sha256, hint=advice)
        except DataError as e:
            problem = str(e).removeprefix(f"{path}: ")  # the temporary path means nothing to users
            raise DataError(f"{url}: the downloaded file is bad: {problem}") from None
        os.replace(path, folder / fname)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for made in created:  # NOTE: deepest first; a folder that holds anything else stays
            with contextlib.suppress(OSError):
                made.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return folder / fname


def _fetch(url, path):
    """Stream ``url`` into the new file ``path``: at most MAX_DOWNLOAD_BYTES, all that was promised."""
    got = 0
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "xb") as out:
        promised = response.headers.get("Content-Length")
        if promised is not None and promised.isdigit() and int(promised) > MAX_DOWNLOAD_BYTES:
            raise ValueError(f"the server announces {int(promised):,} bytes, more than the "
                             f"{MAX_DOWNLOAD_BYTES:,} a dataset file may have")
        while True:
            chunk = response.read(CHUNK_BYTES)
            if not chunk:
                break
            got += len(chunk)
            if got > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"the server sent more than the {MAX_DOWNLOAD_BYTES:,} bytes a "
                                 f"dataset file may have")
            out.write(chunk)
    if promised is not None and promised.isdigit() and got < int(promised):
        raise ValueError(f"retrieval incomplete: got only {got:,} out of {int(promised):,} bytes")


def _mirror(name, mirror):
    url = mirror or os.environ.get("PARACNN_MIRROR") or MIRRORS.get(name)
    if not url:
        raise DataError(f"{name}: no download mirror is known for this dataset; "
                        f"set data.mirror or PARACNN_MIRROR, or PARACNN_DATA_DIR")
    # NOTE: urljoin drops the last path segment of a base URL without a trailing slash.
    return url if url.endswith("/") else url + "/"


def _not_found(name, data_dir):
    """Say which files are missing where, in one line."""
    parts = []
    for folder in candidate_folders(name, data_dir):
        missing = [f for f in FILES if not (folder / f).is_file()]
        if not folder.is_dir():
            parts.append(f"{folder} (no such folder)")
        elif len(missing) == len(FILES):
            parts.append(f"{folder} (none of the files)")
        else:
            parts.append(f"{folder} (missing {', '.join(missing)})")
    return f"cannot find {', '.join(FILES)}; looked in " + "; ".join(parts)
