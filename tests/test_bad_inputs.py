"""Bad input of every kind gives one line on stderr, exit status 2 and no traceback.

A table of broken configs, dataset files, checkpoints and run options, each
run through ``paracnn.cli.main`` (and a few through a real subprocess). The
broken-config table in ``tests/test_cli.py`` covers YAML syntax, unknown keys
and layer types, wrong types and sizes and kernels larger than their input;
this one adds what it does not: alias bombs, models too large for memory,
files that are not configs, and everything that is not a config.
"""

import errno
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from paracnn.checkpoint import load_checkpoint
from paracnn.cli import main
from paracnn.data import checksums
from paracnn.data.idx import idx_bytes, write_fake_dataset, write_idx

REPO = Path(__file__).resolve().parents[1]

# Line numbers in the table refer to this text.
GOOD = """\
model:
  input_shape: [1, 8, 8]
  layers:
    - type: flatten
    - type: dense
      units: 12
    - type: relu
    - type: dense
      units: 4
data:
  dataset: synthetic
  synthetic: {train_size: 48, test_size: 16, image_shape: [1, 8, 8], num_classes: 4}
train:
  epochs: 2
  batch_size: 16
  lr: 0.1
"""

MNIST = """\
model:
  input_shape: [1, 28, 28]
  layers: [{type: flatten}, {type: dense, units: 10}]
data:
  dataset: mnist
  download: false
"""

ALIAS_BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
model: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def edit(old, new, text=GOOD):
    assert old in text, old
    return text.replace(old, new, 1)


class Env(SimpleNamespace):
    """What a case may use: ``tmp``, ``monkeypatch``, ``good_run`` and the helpers below."""

    def config(self, text, name="bad.yaml"):
        path = self.tmp / name
        path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
        return str(path)

    def run_copy(self):
        """A fresh copy of a finished two-epoch run of GOOD: ``(run folder, last.json)``."""
        run = self.tmp / "run"
        shutil.copytree(self.good_run, run)
        return run, run / "checkpoints" / "last.json"

    def tampered(self, change):
        """A copy of the good run whose last.json went through ``change(state)``."""
        run, last = self.run_copy()
        state = json.loads(last.read_text())
        change(state)
        last.write_text(json.dumps(state))
        return run, last

    def train(self, *args):
        return ["train", *args, "--run-dir", str(self.tmp / "out"), "--no-progress"]

    def dataset(self, damage=None, matching_checksums=False):
        """A fake MNIST folder (``--data-dir`` argument); ``damage(folder)`` breaks it."""
        folder = self.tmp / "data" / "mnist"
        hashes = write_fake_dataset(folder, train_size=20, test_size=10)
        if damage:
            hashes.update(damage(folder) or {})
        if matching_checksums:
            # As if the files were the official ones: only the damage is left to find.
            self.monkeypatch.setitem(checksums.SHA256, "mnist", hashes)
        return ["train", self.config(MNIST), "--data-dir", str(folder.parent), "--workers", "0",
                "--run-dir", str(self.tmp / "out"), "--no-progress"]


# -- configs ---------------------------------------------------------------------------------

def too_large_dense(env):
    return ["summary", env.config(edit("units: 12", "units: 100000000000"))]


def too_large_conv_explicit_limit(env):
    text = edit("    - type: flatten\n", "    - type: conv2d\n      filters: 64\n      kernel_size: 3\n"
                "    - type: flatten\n")
    return ["check", env.config(text), "--set", "train.max_params=1000"]


def not_utf8(env):
    return ["check", env.config(b"model:\n  input_shape: [1, 8, 8]\n  layers: \xff\xfe\n")]


def deeply_nested(env):
    return ["check", env.config("model: " + "[" * 60 + "]" * 60 + "\n")]


def huge_file(env):
    return ["check", env.config(GOOD + "#" * 1_100_000 + "\n")]


def never_imported(name):
    def make(env):
        env.after = lambda: not_imported("tests.faults.evil")
        return ["check", env.config(edit("type: relu", f"type: '{name}'"))]
    return make


def not_imported(module):
    assert module not in sys.modules


CONFIGS = [
    ("alias-bomb", lambda env: ["check", env.config(ALIAS_BOMB)], 2,
     r"^{bad}:\d+:\d+: the config expands to more than 100000 values through aliases"),
    ("alias-to-itself", lambda env: ["check", env.config("model: &m\n  layers: *m\n")], 2,
     r"^{bad}:1:8: an alias refers to the mapping or list that contains it$"),
    ("model-too-large-for-memory", too_large_dense, 2,
     r"^{bad}:5:7: layers\[1\] dense: the model needs at least 6,400,000,000,000 parameters "
     r"\(this layer's weight \(100000000000, 64\) alone has 6,400,000,000,000\), more than the "
     r"limit of [\d,]+: training it would take about [\d,.]+ GB as Python float lists \(0 workers\) "
     r"but [\d,.]+ GB of memory is available; .*--set train.max_params=N"),
    ("model-over-max-params", too_large_conv_explicit_limit, 2,
     r"^{bad}:8:7: layers\[2\] dense: the model needs at least 28,288 parameters \(this layer's "
     r"weight \(12, 2304\) alone has 27,648\), more than the limit of 1,000: make the model smaller, "
     r"or raise train.max_params$"),
    ("max-params-zero", lambda env: ["check", env.config(GOOD + "  max_params: 0\n")], 2,
     r"^{bad}:17:3: train.max_params must be >= 1, got 0$"),
    ("worker-timeout-negative", lambda env: ["check", env.config(GOOD + "  worker_timeout: -5\n")], 2,
     r"^{bad}:17:3: train.worker_timeout must be >= 0.0, got -5.0$"),
    ("max-worker-failures-text", lambda env: ["check", env.config(GOOD + "  max_worker_failures: many\n")],
     2, r"^{bad}:17:3: train.max_worker_failures must be an integer, got 'many'$"),
    ("not-utf8", not_utf8, 2, r"^paracnn: error: cannot read config '{bad}': it is not UTF-8 text"),
    ("config-is-a-folder", lambda env: ["check", str(env.tmp)], 2,
     r"^paracnn: error: cannot read config '.*': Is a directory$"),
    ("empty-config", lambda env: ["check", env.config("")], 2,
     r"^{bad}:1:1: the config is empty; it needs at least a model: section$"),
    ("config-is-a-list", lambda env: ["check", env.config("- model\n- train\n")], 2,
     r"^{bad}:1:1: the config must be a mapping with model:, data: and train: sections, got a list$"),
    ("config-too-large", huge_file, 2, r"^paracnn: error: {bad}: the config is larger than 1000000 bytes; refusing it$"),
    ("config-nested-too-deeply", deeply_nested, 2, r"^{bad}:\d+:\d+: the config is nested more than 50 "),
    ("control-character", lambda env: ["check", env.config(GOOD + "  seed: \"\x01\"\n")], 2,
     r"^{bad}:17:10: invalid YAML: unacceptable character #x0001"),
    ("python-name-tag", lambda env: ["check", env.config(edit("lr: 0.1", "lr: !!python/name:os.system"))],
     2, r"^{bad}:16:7: could not determine a constructor for the tag "
        r"'tag:yaml.org,2002:python/name:os.system' \(configs use plain YAML values only\)$"),
    ("python-object-tag-on-a-layer",
     lambda env: ["check", env.config(edit("    - type: relu\n", "    - !!python/object:os.system {}\n"))],
     2, r"^{bad}:7:7: tag 'tag:yaml.org,2002:python/object:os.system' is not allowed"),
    ("layer-type-os-system", never_imported("os:system"), 2,
     r"^{bad}:7:7: layers\[2\]: unknown layer type 'system'\. If 'system' comes from a plugin"),
    ("layer-type-module-path", never_imported("tests.faults.evil:Evil"), 2,
     r"^{bad}:7:7: layers\[2\]: unknown layer type 'Evil'\. If 'Evil' comes from a plugin"),
]


# -- data ------------------------------------------------------------------------------------

def truncate(name):
    def damage(folder):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:len(data) // 2])
    return damage


def rewrite(name, raw):
    def damage(folder):
        (folder / name).write_bytes(gzip.compress(raw, mtime=0))
    return damage


def html_page(folder):
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n")


def fewer_labels(folder):
    return {"train-labels-idx1-ubyte": write_idx(folder / "train-labels-idx1-ubyte.gz", bytes(19), (19,))}


def label_out_of_range(folder):
    return {"t10k-labels-idx1-ubyte": write_idx(folder / "t10k-labels-idx1-ubyte.gz",
                                                bytes([1] * 9 + [10]), (10,))}


def config_data_dir_is_a_file(env):
    (env.tmp / "data").write_text("not a folder")
    return ["train", env.config(MNIST + f"  dir: {env.tmp / 'data'}\n"), "--run-dir", str(env.tmp / "out")]


DATA = [
    ("data-missing", lambda env: ["train", env.config(MNIST), "--data-dir", str(env.tmp / "nothing")], 2,
     r"^paracnn: error: mnist: cannot find train-images-idx3-ubyte.gz, .*; looked in .*nothing/mnist "
     r"\(no such folder\).*; set PARACNN_DATA_DIR .* or set data.download: true$"),
    ("config-data-dir-is-a-file", config_data_dir_is_a_file, 2,
     r"^paracnn: error: mnist: cannot find .*; looked in .*/data/mnist \(no such folder\)"),
    ("data-truncated", lambda env: env.dataset(truncate("train-images-idx3-ubyte.gz")), 2,
     r"^paracnn: error: .*train-images-idx3-ubyte.gz: the gzip data ends early, so the file is "
     r"truncated .*: delete it and run again to re-download"),
    ("data-wrong-magic", lambda env: env.dataset(rewrite("train-labels-idx1-ubyte.gz",
                                                         idx_bytes(bytes(8), (2, 2, 2))),
                                                         matching_checksums=True), 2,
     r"^paracnn: error: .*train-labels-idx1-ubyte.gz: wrong IDX magic 0x00000803, expected 0x00000801"),
    ("data-wrong-count", lambda env: env.dataset(rewrite("t10k-images-idx3-ubyte.gz",
                                                         idx_bytes(bytes(784 * 10), (10, 28, 28))[:-784]),
                                                         matching_checksums=True), 2,
     r"^paracnn: error: .*t10k-images-idx3-ubyte.gz: the header promises 7840 bytes of items "
     r"\(10, 28, 28\) but the file holds 7056; it is truncated or corrupt"),
    ("data-html-saved-as-gz", lambda env: env.dataset(html_page, matching_checksums=True), 2,
     r"^paracnn: error: .*t10k-labels-idx1-ubyte.gz: not a gzip file but an HTML page"),
    ("data-checksum", lambda env: env.dataset(), 2,
     r"^paracnn: error: .*train-images-idx3-ubyte.gz: SHA-256 of the decompressed file is [0-9a-f]{64}, "
     r"expected ba891046"),
    ("data-counts-disagree", lambda env: env.dataset(fewer_labels, matching_checksums=True), 2,
     r"^paracnn: error: .*train-images-idx3-ubyte.gz holds 20 images but .*train-labels-idx1-ubyte.gz "
     r"holds 19 labels; both must come from the same set"),
    ("data-label-out-of-range", lambda env: env.dataset(label_out_of_range, matching_checksums=True), 2,
     r"^paracnn: error: .*t10k-labels-idx1-ubyte.gz: label 10 at position 9 is outside 0..9"),
]


# -- checkpoints -----------------------------------------------------------------------------

def evaluate_tampered(change):
    def make(env):
        _, last = env.tampered(change)
        return ["evaluate", "--checkpoint", str(last)]
    return make


def resume_tampered(change):
    def make(env):
        run, _ = env.tampered(change)
        return ["train", "--resume", str(run), "--no-progress"]
    return make


def truncated_checkpoint(env):
    _, last = env.run_copy()
    last.write_bytes(last.read_bytes()[:5000])
    return ["evaluate", "--checkpoint", str(last)]


def binary_checkpoint(env):
    _, last = env.run_copy()
    last.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return ["train", "--resume", str(last.parent.parent)]


def deeply_nested_checkpoint(env):
    _, last = env.run_copy()
    last.write_text("[" * 100_000 + "]" * 100_000)
    return ["evaluate", "--checkpoint", str(last)]


def deep_config_checkpoint(env):
    """A checkpoint whose config holds a value nested 900 deep: JSON reads it, deepcopy did not.

    NOTE: the nesting is written as text: PyPy's json encoder (pure Python, two frames a
    level) cannot write it, although its decoder reads it.
    """
    def change(state):
        state["config"]["train"]["seed"] = "DEEP"
    _, last = env.tampered(change)
    last.write_text(last.read_text().replace('"DEEP"', "[" * 900 + "0" + "]" * 900))
    return ["evaluate", "--checkpoint", str(last)]


def resume_with_another_config(env):
    run, _ = env.run_copy()
    return env.train(env.config(edit("lr: 0.1", "lr: 0.5")), "--resume", str(run))


def set_layer(key, value, index=1):
    def change(state):
        state["config"]["model"]["layers"][index][key] = value
    return change


def setter(key, value):
    return lambda state: state.__setitem__(key, value)


def no_checkpoints(env):
    (env.tmp / "empty-run").mkdir()
    return ["train", "--resume", str(env.tmp / "empty-run")]


CHECKPOINTS = [
    ("checkpoint-truncated", truncated_checkpoint, 2,
     r"^paracnn: error: checkpoint .*last.json is not valid JSON \(.*\); it may be truncated"),
    ("checkpoint-not-text", binary_checkpoint, 2,
     r"^paracnn: error: checkpoint .*last.json is not text \(not UTF-8\)"),
    ("checkpoint-nested-json", deeply_nested_checkpoint, 2,
     r"^paracnn: error: checkpoint .*last.json is not valid JSON"),
    ("checkpoint-deep-config", deep_config_checkpoint, 2,
     r"^paracnn: error: .*last.json: the config is nested more than 50 levels deep$"),
    ("checkpoint-newer-schema", evaluate_tampered(setter("schema", 7)), 2,
     r"^paracnn: error: checkpoint .*last.json has schema 7, newer than this paracnn .* upgrade paracnn$"),
    ("checkpoint-weight-count", resume_tampered(set_layer("units", 13)), 2,
     r"^paracnn: error: checkpoint .*last.json was saved from a different model: tensor 1\.weight is "
     r"\(12, 64\) in the checkpoint but \(13, 64\) in the model; load it with the config it was "
     r"trained with$"),
    ("checkpoint-missing-weight", evaluate_tampered(lambda s: s["weights"].pop()), 2,
     r"^paracnn: error: checkpoint .*last.json has a momentum buffer of the wrong length \(832, "
     r"expected 831\)|holds 831 weights"),
    ("checkpoint-nan-weight", evaluate_tampered(lambda s: s["weights"].__setitem__(5, float("nan"))), 2,
     r"^paracnn: error: checkpoint .*last.json weights\[5\] is nan; expected a finite number$"),
    ("checkpoint-text-weight", evaluate_tampered(lambda s: s["weights"].__setitem__(0, "0.5")), 2,
     r"^paracnn: error: checkpoint .*last.json weights\[0\] is '0.5'; expected a finite number$"),
    ("checkpoint-unknown-layer-os-system", evaluate_tampered(set_layer("type", "os:system", 2)), 2,
     r"^.*last.json: layers\[2\]: unknown layer type 'system'\. If 'system' comes from a plugin"),
    ("checkpoint-model-too-large", resume_tampered(set_layer("units", 10 ** 12, 3)), 2,
     r"^.*last.json: layers\[3\] dense: the model needs at least [\d,]+ parameters"),
    ("checkpoint-config-mismatch", resume_with_another_config, 2,
     r"^paracnn: error: train.lr is 0.5 in the config but 0.1 in checkpoint .*last.json; resuming "
     r"must not change it"),
    ("checkpoint-missing", lambda env: ["evaluate", "--checkpoint", str(env.tmp / "nope.json")], 2,
     r"^paracnn: error: checkpoint .*nope.json does not exist$"),
    ("checkpoint-optimizer-not-a-mapping", resume_tampered(setter("optimizer", [0.9])), 2,
     r"^paracnn: error: checkpoint .*last.json has optimizer \[0.9\] \(expected a mapping or null\)"),
    ("checkpoint-negative-step", resume_tampered(setter("step", -4)), 2,
     r"^paracnn: error: checkpoint .*last.json has step -4 \(expected a whole number >= 0\)"),
    ("checkpoint-progress-text", resume_tampered(setter("progress", {"loss_sum": "lots"})), 2,
     r"^paracnn: error: checkpoint .*last.json has progress.loss_sum 'lots' \(expected a finite number\)"),
    ("resume-folder-without-checkpoint", no_checkpoints, 2,
     r"^paracnn: error: .*empty-run is a folder without checkpoints/last.json"),
]


# -- the run itself ----------------------------------------------------------------------------

def run_dir_under_a_file(env):
    (env.tmp / "a-file").write_text("in the way")
    return ["train", env.config(GOOD), "--run-dir", str(env.tmp / "a-file" / "run"), "--no-progress"]


def disk_full_during_second_save(env):
    """The epoch-2 save of last.json fails with ENOSPC; epoch 1's must survive intact."""
    from paracnn import checkpoint, files

    real, saves = checkpoint.write_atomic, []

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full(path, text):
        saves.append(Path(path).name)
        if saves.count("last.json") == 2 and saves[-1] == "last.json":
            # The temp file is written, then syncing it finds the disk full.
            with env.monkeypatch.context() as m:
                m.setattr(files.os, "fsync", no_space)
                return real(path, text)
        return real(path, text)

    env.monkeypatch.setattr(checkpoint, "write_atomic", full)

    def after():
        folder = env.tmp / "out" / "checkpoints"
        state = load_checkpoint(folder / "last.json")
        assert (state["epoch"], state["step"]) == (1, 3)
        # no temp files (and no best.json: GOOD holds no validation split out)
        assert sorted(p.name for p in folder.iterdir()) == ["last.json"]
    env.after = after
    return env.train(env.config(GOOD))


def disk_full_writing_metrics(env):
    from paracnn import monitor

    def full(self, record):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.jsonl))

    env.monkeypatch.setattr(monitor.MetricsWriter, "write", full)
    return env.train(env.config(GOOD))


RUN = [
    ("workers-negative", lambda env: env.train(env.config(GOOD), "--workers", "-3"), 2,
     r"^--workers -3: train.workers must be >= 0, got -3$"),
    ("workers-absurd", lambda env: env.train(env.config(GOOD), "--workers", "100000"), 2,
     r"^--workers 100000: train.workers must be <= 1024, got 100000$"),
    ("run-dir-unwritable", run_dir_under_a_file, 2,
     r"^paracnn: error: cannot write to the run folder .*a-file/run: Not a directory \(.*\); check "
     r"that the folder can be created and written \(permissions, a file in the way\), or choose "
     r"another folder with --run-dir$"),
    ("disk-full-during-save", disk_full_during_second_save, 2,
     r"^paracnn: error: cannot save checkpoint .*out/checkpoints/last.json: No space left on device; "
     r"the previous checkpoint there is unchanged; free some space, then resume with --resume .*out$"),
    ("disk-full-writing-metrics", disk_full_writing_metrics, 2,
     r"^paracnn: error: cannot write to the run folder .*out: No space left on device "
     r"\(.*metrics.jsonl\); free some space, or choose another folder with --run-dir$"),
    ("resume-missing-folder", lambda env: ["train", "--resume", str(env.tmp / "no-such-run")], 2,
     r"^paracnn: error: checkpoint .*no-such-run does not exist$"),
]

CASES = CONFIGS + DATA + CHECKPOINTS + RUN


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished two-epoch run of GOOD (3 steps an epoch), to copy and damage."""
    root = tmp_path_factory.mktemp("good")
    (root / "good.yaml").write_text(GOOD)
    assert main(["train", str(root / "good.yaml"), "--run-dir", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


@pytest.fixture
def env(tmp_path, monkeypatch, good_run, capsys):
    """No dataset from the outside world: no PARACNN_DATA_DIR, a private cache, no system folders."""
    for var in ("PARACNN_DATA_DIR", "PARACNN_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PARACNN_CACHE_DIR", str(tmp_path / "cache"))
    for name in list(checksums.SYSTEM_DIRS):
        monkeypatch.delitem(checksums.SYSTEM_DIRS, name)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    return Env(tmp=tmp_path, monkeypatch=monkeypatch, good_run=good_run, after=None)


@pytest.mark.parametrize("case_id, make, code, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(env, capsys, case_id, make, code, pattern):
    argv = make(env)
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert err.endswith("\n") and "\n" not in err[:-1], err      # exactly one line
    assert "Traceback" not in err
    assert re.search(pattern.replace("{bad}", re.escape(str(env.tmp / "bad.yaml"))), err), err
    if env.after:
        env.after()


def test_enough_cases():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


# -- the same through a real process: no traceback unless --debug --------------------------

def paracnn(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PARACNN_DATA_DIR"}
    env.update(PYTHONPATH=str(REPO), PARACNN_CACHE_DIR=str(Path(cwd) / "cache"))
    return subprocess.run([sys.executable, "-m", "paracnn", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("case_id", ["alias-bomb", "data-truncated", "checkpoint-truncated",
                                     "run-dir-unwritable"])
def test_in_a_subprocess_there_is_no_traceback(env, case_id):
    make, pattern = next((c[1], c[3]) for c in CASES if c[0] == case_id)
    argv = make(env)
    r = paracnn(*argv, cwd=env.tmp)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert re.search(pattern.replace("{bad}", re.escape(str(env.tmp / "bad.yaml"))), r.stderr), r.stderr
    debug = paracnn("--debug", *argv, cwd=env.tmp)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
