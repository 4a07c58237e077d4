"""Reading and writing IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic ``00 00 <type> <ndims>``, then ``ndims``
big-endian uint32 sizes, then the items. paracnn only uses uint8 items
(type ``0x08``): images are ``(N, H, W)`` or ``(N, C, H, W)``, labels ``(N,)``.

Reading goes through the ``mnist`` package's ``parse_idx``, which returns a
NumPy array; it is turned into plain ``bytes`` at once. (Under PyPy, where
NumPy runs through a slow C-API emulation, the checked items are sliced out of
the file's bytes instead.) ``mnist`` (and so
NumPy) is imported only here, only when a real file is read, so training
workers never need it. Every problem with a file becomes a one-line
:class:`~paracnn.errors.DataError` that names the file and says what to do.
"""

import contextlib
import gzip
import hashlib
import io
import math
import platform
import random
import struct
import zlib
from pathlib import Path

from ..errors import DataError
from ..files import write_atomic
from ..limits import CHUNK_BYTES, MAX_IDX_BYTES
from .checksums import FILES, SIZE_BY_SHA256, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS

UBYTE = 0x08
HINT = "delete it and run again to re-download, or set PARACNN_DATA_DIR to a folder with good copies"
IMAGE_DIMS = (3, 4)
LABEL_DIMS = (1,)


def idx_bytes(data, dims):
    """The uncompressed IDX encoding of uint8 ``data`` with sizes ``dims``."""
    dims = tuple(int(d) for d in dims)
    if len(data) != math.prod(dims):
        raise ValueError(f"IDX data has {len(data)} bytes but dims {dims} need {math.prod(dims)}")
    return struct.pack(f">HBB{len(dims)}I", 0, UBYTE, len(dims), *dims) + bytes(data)


def write_idx(path, data, dims, gz=True):
    """Write uint8 ``data`` as an IDX file, gzip-compressed unless ``gz=False``.

    Pure standard library, for tests and tools that need small IDX files.

    Args:
        path: where to write (the name is used as given; add ``.gz`` yourself).
        data: bytes-like of ``prod(dims)`` uint8 items, row-major.
        dims: sizes, e.g. ``(N, 28, 28)`` for images or ``(N,)`` for labels.

    Returns:
        The SHA-256 (hex) of the uncompressed IDX bytes, as the loaders check it.

    Example::

        write_idx(tmp_path / "train-labels-idx1-ubyte.gz", bytes([3, 1, 4]), (3,))
    """
    raw = idx_bytes(data, dims)
    if gz:
        # No name or mtime in the gzip header: the same data gives the same .gz.
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
            g.write(raw)
    write_atomic(path, buf.getvalue() if gz else raw)
    return hashlib.sha256(raw).hexdigest()


def write_fake_dataset(folder, train_size=32, test_size=8, image_shape=(28, 28),
                       num_classes=10, seed=0):
    """Write the four standard ``.gz`` files of a random dataset into ``folder``.

    The images are random bytes and the labels random classes; the files are
    for testing the loading machinery, not for learning (see
    :mod:`paracnn.data.synthetic` for that).

    Args:
        folder: created if missing.
        train_size, test_size: number of images in each split.
        image_shape: ``(H, W)`` or ``(C, H, W)``.
        num_classes: labels are drawn from ``0 .. num_classes - 1``.
        seed: the same seed writes the same files.

    Returns:
        ``{file name without .gz: SHA-256}``, ready to pass as ``checksums=``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"paracnn-fake:{seed}")
    pixels = math.prod(image_shape)
    hashes = {}
    for images, labels, n in ((TRAIN_IMAGES, TRAIN_LABELS, train_size), (TEST_IMAGES, TEST_LABELS, test_size)):
        hashes[images[:-3]] = write_idx(folder / images, rng.randbytes(n * pixels), (n, *image_shape))
        label_bytes = bytes(rng.randrange(num_classes) for _ in range(n))
        hashes[labels[:-3]] = write_idx(folder / labels, label_bytes, (n,))
    assert set(hashes) == {f[:-3] for f in FILES}
    return hashes


def read_idx(path, ndims, sha256=None, hint=HINT):
    """Read a gzip-compressed uint8 IDX file, decompressing it as a stream.

    The header is read first; the items it promises are then read in chunks,
    hashed as they come, and never more than the header promises (plus one
    byte, to see that nothing follows). A file whose header promises more than
    its known size (:data:`~paracnn.data.checksums.SIZES`, for a known
    ``sha256``) or than :data:`~paracnn.limits.MAX_IDX_BYTES` is refused before
    its items are read, so a small ``.gz`` that inflates to gigabytes costs
    nothing.

    Args:
        path: the ``.gz`` file.
        ndims: the numbers of dimensions accepted, e.g. :data:`IMAGE_DIMS`.
        sha256: expected hex SHA-256 of the decompressed bytes, or None.
        hint: what the error message tells the user to do about a bad file.

    Returns:
        ``(dims, data)``: the sizes and the items as ``bytes``.

    Raises:
        DataError: the file is missing, not gzip, truncated, too large, not
            uint8 IDX with ``ndims`` dimensions, or fails its checksum.
    """
    digest = hashlib.sha256()
    with _gzip_errors(path, hint), gzip.open(path, "rb") as f:
        raw = _read_header(f, path, ndims, hint)
        nd = raw[3]
        dims, offset = struct.unpack_from(f">{nd}I", raw, 4), len(raw)
        want = math.prod(dims)
        limit = SIZE_BY_SHA256.get(sha256, MAX_IDX_BYTES)
        if offset + want > limit:
            known = "its known size" if sha256 in SIZE_BY_SHA256 else "paracnn's limit for an IDX file"
            raise DataError(f"{path}: the header promises {want:,} bytes of items {tuple(dims)}, more "
                            f"than {known} ({limit:,} bytes); it is corrupt or not a dataset file: {hint}")
        raw = bytearray(raw)
        digest.update(raw)
        while len(raw) - offset < want:
            chunk = f.read(min(CHUNK_BYTES, want - (len(raw) - offset)))
            if not chunk:
                break
            raw += chunk
            digest.update(chunk)
        extra = f.read(1)
    have = len(raw) - offset
    if have != want or extra:
        holds = "more" if extra else f"{have}"
        raise DataError(f"{path}: the header promises {want} bytes of items {tuple(dims)} but "
                        f"the file holds {holds}; it is truncated or corrupt: {hint}")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise DataError(f"{path}: SHA-256 of the decompressed file is {digest.hexdigest()}, expected "
                        f"{sha256} (a damaged file, or one from another dataset): {hint}")
    return dims, _parse(path, bytes(raw), offset, hint)


def load_idx_pair(images_path, labels_path, num_classes, checksums=None, hint=HINT):
    """Read a matching images file and labels file.

    Args:
        images_path, labels_path: the two ``.gz`` files.
        num_classes: every label must lie in ``0 .. num_classes - 1``.
        checksums: ``{file name without .gz: SHA-256}``; files not in it (or
            all files, if None) are not checked.
        hint: what to tell the user to do about a bad file.

    Returns:
        ``(images, labels, shape)``: uint8 ``bytes`` of ``N*C*H*W`` and ``N``,
        and the image shape ``(C, H, W)``.
    """
    checksums = checksums or {}
    images_path, labels_path = Path(images_path), Path(labels_path)
    idims, images = read_idx(images_path, IMAGE_DIMS, _lookup(checksums, images_path), hint)
    ldims, labels = read_idx(labels_path, LABEL_DIMS, _lookup(checksums, labels_path), hint)
    if idims[0] != ldims[0]:
        raise DataError(f"{images_path} holds {idims[0]} images but {labels_path} holds {ldims[0]} "
                        f"labels; both must come from the same set: {hint}")
    if labels and max(labels) >= num_classes:
        bad = next(i for i, v in enumerate(labels) if v >= num_classes)
        raise DataError(f"{labels_path}: label {labels[bad]} at position {bad} is outside "
                        f"0..{num_classes - 1}: {hint}")
    shape = tuple(idims[1:]) if len(idims) == 4 else (1, *idims[1:])
    return images, labels, shape


def _lookup(checksums, path):
    name = path.name
    return checksums.get(name[:-3] if name.endswith(".gz") else name)


@contextlib.contextmanager
def _gzip_errors(path, hint):
    """Every way reading a ``.gz`` file fails, as one DataError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; put the dataset's four .gz files there, "
                        f"or set PARACNN_DATA_DIR") from None
    except gzip.BadGzipFile as e:
        if _looks_html(path):
            problem = "not a gzip file but an HTML page (an error page saved by a failed download?)"
        elif str(e).startswith("Not a gzipped file"):
            problem = f"not a gzip file ({e})"
        else:
            problem = f"corrupt gzip data ({e})"
        raise DataError(f"{path}: {problem}: {hint}") from None
    except EOFError:
        raise DataError(f"{path}: the gzip data ends early, so the file is truncated "
                        f"(an interrupted copy or download): {hint}") from None
    except (zlib.error, OSError) as e:
        raise DataError(f"{path}: cannot decompress ({e}): {hint}") from None


def _looks_html(path):
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body"))


def _read_header(f, path, ndims, hint):
    """Read and check the magic and the sizes from the open stream; return those header bytes."""
    kind = "labels" if ndims == LABEL_DIMS else "images"
    raw = f.read(4)
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes after decompression, too short for "
                        f"an IDX file: {hint}")
    zeros, dtype, nd = struct.unpack_from(">HBB", raw)
    if zeros != 0 or dtype != UBYTE or nd not in ndims:
        expected = " or ".join(f"0x{UBYTE << 8 | n:08x}" for n in ndims)
        raise DataError(f"{path}: wrong IDX magic 0x{raw[:4].hex()}, expected {expected} "
                        f"(uint8 {kind} with {' or '.join(map(str, ndims))} dimensions): {hint}")
    raw += f.read(4 * nd)
    if len(raw) < 4 + 4 * nd:
        raise DataError(f"{path}: the IDX header is cut short: {hint}")
    return raw


def _parse(path, raw, offset, hint):
    """The items of a checked IDX file, parsed by the ``mnist`` package (after byte ``offset``)."""
    if platform.python_implementation() == "PyPy":
        # NOTE: NumPy runs under PyPy through its C-API emulation: parse_idx takes about
        # 2.4 s and leaves some 190 MB per training file that PyPy never hands back, which
        # forked workers then inherit. _header and read_idx have checked the magic, the
        # dimensions and the size, so the uint8 items are exactly the bytes after the header.
        return raw[offset:]
    import mnist  # NOTE: imported late: it pulls in NumPy, which workers must not need.

    try:
        return mnist.parse_idx(io.BytesIO(raw)).tobytes()
    except (mnist.IdxDecodeError, struct.error, ValueError, TypeError) as e:
        raise DataError(f"{path}: cannot parse the IDX data ({e}): {hint}") from None
