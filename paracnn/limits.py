"""The resource policy: how much of the machine any input may ask for, each bound named once.

A small file must not be able to take the whole machine: a worker count that
starts processes until memory runs out, a YAML file whose merge keys expand
for hours, a gzip file that inflates to gigabytes, a checkpoint or image far
larger than any paracnn writes or reads. Every reader checks its input against
the bound here *before* it allocates, and refuses with one line (exit 2) that
gives the figure and the bound. ``docs/errors.md`` ("Resource limits") lists
them; memory for the model, its activations and the dataset is estimated by
:mod:`paracnn.memory` against the memory available, not against a constant.

Example::

    from paracnn.limits import MAX_WORKERS
    check_int("train.workers", n, minimum=0, maximum=MAX_WORKERS)
"""

#: worker processes any command starts (train, evaluate, profile). Each one is a Python process
#: of 30 MB or more, so 1024 already needs a large machine; more is a typo, not a plan.
MAX_WORKERS = 1024

#: a config file's size in bytes; the largest shipped config is under 3 KB.
MAX_CONFIG_BYTES = 1_000_000
#: values a config may expand to through aliases and ``<<`` merge keys ("billion laughs").
MAX_CONFIG_NODES = 100_000
#: nesting of a config (and of the config inside a checkpoint): a real one is 5 deep.
MAX_CONFIG_DEPTH = 50
#: digits of an integer in a config or checkpoint; CPython (3.11+) refuses more than 4300 to convert.
MAX_INT_DIGITS = 100

#: decompressed bytes of one IDX file whose size no table knows (the official files are in
#: :data:`paracnn.data.checksums.SIZES`): 4x the largest official file (47 MB).
MAX_IDX_BYTES = 200_000_000
#: bytes of a downloaded ``.gz`` file; the largest official one is 26 MB.
MAX_DOWNLOAD_BYTES = 100_000_000
#: bytes read from the network or a gzip stream at a time.
CHUNK_BYTES = 1 << 20

#: a checkpoint file's size in bytes: about 20 bytes a value, three values (weights, two optimiser
#: buffers) per parameter, so room for some 8 million parameters, 130x LeNet-5.
MAX_CHECKPOINT_BYTES = 500_000_000
#: a small JSON file of a run (``eval.json``, one line of ``metrics.jsonl``) read by compare or plot.
MAX_RUN_FILE_BYTES = 50_000_000

#: pixels of an image given to ``paracnn predict`` (width x height). A 50 MP camera photo fits;
#: Pillow's own default (about 179 MP, refused only past twice that) let a 450 KB PNG take 1.9 GB.
MAX_IMAGE_PIXELS = 64_000_000

#: the share of the available memory a config may plan to use (model, activations and dataset
#: together); the rest is for Python itself, the worker processes' code and everything else.
MEMORY_SHARE = 0.8
