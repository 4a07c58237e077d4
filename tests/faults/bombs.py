"""Small files that ask for the whole machine: a gzip bomb, a huge PNG, nested YAML merges.

Each is a few kilobytes to a few megabytes on disk and is built in milliseconds;
read naively, each takes gigabytes. The resource tests feed them to paracnn.
"""

import gzip
import struct
import zlib


def gzip_bomb(path, header, inflated):
    """A ``.gz`` of ``header`` followed by ``inflated`` zero bytes, as many 1 MiB gzip members.

    gzip reads concatenated members as one stream, so ``inflated`` of 4 GB is about 4 MB here.
    """
    zeros = gzip.compress(bytes(1 << 20), mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(header, mtime=0))
        for _ in range(inflated >> 20):
            f.write(zeros)
    return path


def idx_header(dims):
    """The header of a uint8 IDX file of ``dims``, without its items."""
    return struct.pack(f">HBB{len(dims)}I", 0, 0x08, len(dims), *dims)


def huge_png(path, width, height, channels=4):
    """A valid PNG of ``width`` x ``height`` transparent black pixels (110 MP: about 450 KB).

    ``channels``: 4 for RGBA (what takes the most memory to decode), 1 for grayscale.
    """
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + channels * width)  # filter byte 0, then the pixels
    compressor, parts = zlib.compressobj(9), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 4: 6}[channels], 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
                + chunk(b"IEND", b""))
    return path


def merge_bomb(levels=30):
    """YAML in which each mapping merges the one before twice: 2**levels pairs, from 31 short lines."""
    lines = ["m0: &m0 {k: 1}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"
