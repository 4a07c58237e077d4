"""Known datasets: their four file names, official hashes and download mirrors.

The hashes are the SHA-256 of each file's **decompressed** bytes. Mirrors
recompress the files with different gzip headers, so the ``.gz`` bytes differ
from mirror to mirror while the IDX bytes inside do not.
"""

from pathlib import Path

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

#: The four files every IDX dataset folder holds, in download order.
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

#: SHA-256 of the decompressed files, keyed by dataset and then by file name
#: without ``.gz`` (as in the ``SHA256SUMS.uncompressed`` files that ship with
#: the data). Tests may ``monkeypatch.setitem`` an entry for fake files.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

#: Decompressed sizes in bytes of the four files, the same for both datasets (60,000 and 10,000
#: images of 28x28 after a 16-byte header; labels after an 8-byte one).
SIZES = {
    "train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}
#: the size of the file with each official hash: a file claiming more is refused while it streams.
SIZE_BY_SHA256 = {sha: SIZES[name] for table in SHA256.values() for name, sha in table.items()}

#: Default base URLs. NOTE: the ``mnist`` package's built-in
#: http://yann.lecun.com/exdb/mnist/ no longer serves the files.
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

#: Folders that system packages install datasets into, searched last
#: (Debian/Ubuntu: ``apt install dataset-fashion-mnist``).
SYSTEM_DIRS = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}

#: Class names, for reports and plots.
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def expected_sha256(name, fname, checksums=None):
    """The expected hash of file ``fname`` of dataset ``name``, or None if unknown.

    Args:
        name: dataset name, e.g. ``"mnist"``.
        fname: file name, with or without ``.gz``.
        checksums: a table ``{file name without .gz: hex}`` to use instead of
            :data:`SHA256` (``{}`` disables checking).
    """
    table = SHA256.get(name, {}) if checksums is None else checksums
    key = fname[:-3] if fname.endswith(".gz") else fname
    return table.get(key)
