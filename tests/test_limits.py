"""The resource policy's acceptance cases: each small input that used to take the machine, run by
the real command line under a 1 GiB address-space limit (``prlimit --as=1073741824``), exits 2
with one line.

Each case runs ``paracnn.cli.entry`` in a child process whose ``RLIMIT_AS`` is 1 GiB. The child
also refuses to start more than a few processes, so that a regression in the worker bound
fails this test instead of filling the machine with workers.
"""

import platform
import re
import subprocess
import sys

import pytest
import yaml

from paracnn.data.idx import write_fake_dataset

from .faults.bombs import gzip_bomb, huge_png, idx_header, merge_bomb
from .parallel.helpers import REPO, tiny_dict

resource = pytest.importorskip("resource")

GIB = 1 << 30
#: generous liveness bound, not a speed requirement: the cases take about a second each.
TIMEOUT = 120

#: runs in the child before paracnn: the 1 GiB limit, and at most 4 new processes.
CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, resource.RLIM_INFINITY))
import multiprocessing.process as process
started, start = [0], process.BaseProcess.start
def guarded(self):
    started[0] += 1
    if started[0] > 4:
        sys.stderr.write("test guard: a fifth process was started\\n")
        sys.exit(99)
    return start(self)
process.BaseProcess.start = guarded
if {run}:
    from paracnn.cli import entry
    sys.argv = ["paracnn"] + {argv!r}
    entry()
"""


def run_limited(argv, cwd, run=True):
    code = CHILD.format(limit=GIB, run=run, argv=list(map(str, argv)))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)


@pytest.fixture(scope="module", autouse=True)
def interpreter_starts_under_the_limit(tmp_path_factory):
    done = run_limited([], tmp_path_factory.mktemp("start"), run=False)
    if done.returncode != 0:
        if platform.python_implementation() == "PyPy":
            pytest.skip(f"this interpreter does not start with RLIMIT_AS of 1 GiB: {done.stderr[-200:]}")
        raise AssertionError(f"python does not start under a 1 GiB limit: {done.stderr}")


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def profile_100000_workers(tmp):
    return ["profile", REPO / "configs" / "tiny.yaml", "--workers", "100000"]


def merge_keys(tmp):
    (tmp / "merge.yaml").write_text(merge_bomb(30))
    return ["summary", tmp / "merge.yaml"]


def gzip_bomb_as_idx(tmp):
    write_fake_dataset(tmp / "data" / "mnist", train_size=8, test_size=4)
    # the header of the real training images, then 2 GB of zeros in a 2 MB file
    gzip_bomb(tmp / "data" / "mnist" / "train-images-idx3-ubyte.gz", idx_header((60_000, 28, 28)), 2 * GIB)
    cfg = {"model": {"input_shape": [1, 28, 28], "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]},
           "data": {"dataset": "mnist", "download": False}}
    return ["train", write_yaml(tmp / "m.yaml", cfg), "--data-dir", tmp / "data", "--run-dir", tmp / "run",
            "--workers", "0", "--no-progress"]


def png_of_110_megapixels(tmp):
    cfg = tiny_dict(epochs=1)
    cfg["model"]["input_shape"] = cfg["data"]["synthetic"]["image_shape"] = [1, 28, 28]
    from paracnn.config import config_from_dict
    from paracnn.train import train
    train(config_from_dict(cfg), workers=0, run_dir=tmp / "run", progress=False, log=lambda line: None)
    return ["predict", "--checkpoint", tmp / "run", huge_png(tmp / "big.png", 11_000, 10_000)]


def input_of_20000_by_20000(tmp):
    cfg = tiny_dict()
    # NOTE: a conv layer first, whose index plans took the memory before the dense layer's
    # parameters could be refused
    cfg["model"] = {"input_shape": [1, 20_000, 20_000], "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"}, {"type": "dense", "units": 4}]}
    cfg["data"]["synthetic"].update(image_shape=[1, 20_000, 20_000], train_size=1, test_size=1)
    return ["summary", write_yaml(tmp / "huge.yaml", cfg)]


CASES = {
    "profile --workers 100000": (profile_100000_workers, r"--workers asks for 100,000 worker processes"),
    "merge-key YAML": (merge_keys, r"merge.yaml:1:10: the config expands to more than 100000 values"),
    "gzip bomb as an IDX file": (gzip_bomb_as_idx, r"train-images-idx3-ubyte.gz: the header promises "
                                                   r"47040000 bytes of items \(60000, 28, 28\) but the file "
                                                   r"holds more"),
    "110 MP PNG": (png_of_110_megapixels, r"big.png: 11000x10000 is 110 megapixels, more than the 64"),
    "20000x20000 input": (input_of_20000_by_20000, r"huge.yaml:\d+:\d+: the (input \(1, 20000, 20000\)|dataset "
                                                   r"of 2 images of 400,000,000 pixels) .*would need about"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_under_a_1_gib_limit_each_case_exits_2_with_one_line(case, tmp_path):
    if case == "110 MP PNG":
        pytest.importorskip("PIL", reason="predict reads pictures with Pillow (the image extra)")
    make, pattern = CASES[case]
    done = run_limited(make(tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(pattern, done.stderr), done.stderr
    if case == "gzip bomb as an IDX file":
        assert not (tmp_path / "run").exists()  # the run failed before its first step
