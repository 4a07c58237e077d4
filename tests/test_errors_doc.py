"""``docs/errors.md`` is complete and true.

Its table "Every error" has one row per error paracnn reports: an id, the
exception class (with its module), the exit status, an example message and the
fix. The tests check that every exception class defined in paracnn has a row,
that each row's class and exit status are right, and that each row's example is
what paracnn prints: :data:`TRIGGERS` maps every id to a function that makes
paracnn report that error, and the message must match the example (``...``
stands for any text). A new error is one new row and one new trigger.
"""

import contextlib
import importlib
import inspect
import io
import pkgutil
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

import paracnn
from paracnn.cli import main
from paracnn.registry import Registry, discover
from paracnn.testing import check_layer

from .faults import contract as contract_layers
from .faults import LAYER_AT_LINE_9, config_with
from .faults import layers as fault_layers
from .faults.contract import ShortDx

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "errors.md").read_text()
SECTION = DOC.split("\n## Every error\n", 1)[1].split("\n## ", 1)[0]
ROW = re.compile(r"^\| `([a-z0-9-]+)` \| `([\w.]+)` \| ([^|]+) \| `([^`]+)` \| ([^|]+) \|$", re.M)

CONFIG = LAYER_AT_LINE_9  # layers[3] (line 9, column 7) is replaced per error


def rows():
    """``{id: (class path, exit statuses, example, fix)}`` from the table."""
    found = ROW.findall(SECTION)
    assert len(found) >= 20, "the table 'Every error' is missing or unreadable"
    out = {}
    for ident, cls, codes, example, fix in found:
        assert ident not in out, f"id {ident} appears twice"
        out[ident] = (cls, [int(c) for c in re.findall(r"\d+", codes)], example, fix.strip())
    return out


def resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module or "builtins"), name)


def paracnn_exception_classes():
    """Every exception class defined in a paracnn module, as ``module.Name``.

    (A module that needs an optional extra missing here cannot be imported, so it is skipped.)
    """
    found = set()
    for info in pkgutil.walk_packages(paracnn.__path__, "paracnn."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__):
                found.add(f"{module.__name__}.{name}")
    return found


def test_every_exception_class_of_paracnn_has_a_row():
    # (the few that never reach the user are named below the table instead)
    documented = {cls for cls, _, _, _ in rows().values()} | set(re.findall(r"`(paracnn\.[\w.]+)`", SECTION))
    assert paracnn_exception_classes() - documented == set()


def test_every_row_names_a_real_class_with_its_exit_status():
    for ident, (path, codes, _, fix) in rows().items():
        cls = resolve(path)
        assert issubclass(cls, BaseException) and fix, ident
        if issubclass(cls, paracnn.errors.ParacnnError) and ident != "interrupted":
            # (TrainingInterrupted takes 130 or 143 from the signal; its trigger checks that.)
            assert codes == [cls.exit_code], (ident, codes, cls.exit_code)


def test_every_row_has_a_trigger_and_every_trigger_a_row():
    assert set(rows()) == set(TRIGGERS)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = Registry(entry_points=discover() + _test_layers(), disable_plugins=False)
    monkeypatch.setattr("paracnn.config.loaded.get_registry", lambda: registry)
    return Env(tmp_path, monkeypatch)


def _test_layers():
    layers = {**fault_layers.LAYERS, **contract_layers.LAYERS,
              "interrupts": "tests.faults.signals:Interrupts",
              "not_a_layer": "os.path:join", "broken_plugin": "no_such_module_xyz:Layer",
              "dup": "tests.faults.contract:Scale",
              "raises_in_build": "tests.faults.misbehaving:RaisesInBuild",
              "old_add_param": "tests.faults.contract:OldAddParam"}
    entries = [(metadata.EntryPoint(name, value, "paracnn.layers"), "paracnn-test-errors", "0")
               for name, value in layers.items()]
    # a second distribution registering the same name: a clash
    clash = metadata.EntryPoint("dup", "tests.faults.contract:Scale", "paracnn.layers")
    return entries + [(clash, "paracnn-test-other", "0")]


class Env:
    """A scratch folder as the current directory, and the ``paracnn`` command run in-process."""

    def __init__(self, path, monkeypatch):
        self.path, self.monkeypatch = path, monkeypatch

    def config(self, layer="type: scale", text=CONFIG):
        (self.path / "x.yaml").write_text(config_with(layer, text))
        return "x.yaml"

    def run(self, *args):
        """``(exit status, last line on stderr)`` of ``paracnn ARGS``."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse
                code = e.code
        lines = err.getvalue().strip().splitlines()
        return code, lines[-1] if lines else ""

    def train(self, layer, *extra):
        return self.run("train", self.config(layer), "--run-dir", "runs/x", "--no-progress", *extra)


# -- the triggers: each makes paracnn report one error, and returns (exit status, message) --------

def yaml_syntax(env):
    return env.run("check", env.config(text="model:\n  input_shape: [1, 6, 6]\n  layers\n    - x\n"))


def config_key(env):
    return env.run("check", env.config("{type: dense, unit: 3}"))


def config_value(env):
    return env.run("check", env.config("{type: dense, units: ten}"))


def shape(env):
    return env.run("check", env.config("type: relu", CONFIG.replace("    - type: flatten\n", "")))


def output_classes(env):
    return env.run("check", env.config("type: relu"), "--set", "model.layers.4.units=4")


def model_too_large(env):
    return env.run("check", env.config("type: relu"), "--set", "train.max_params=50")


def set_option(env):
    return env.run("check", env.config("type: relu"), "--set", "train.lrr=0.1")


def usage(env):
    return env.run("profile", "x.yaml", "--steps", "two")


def unknown_layer(env):
    return env.run("check", env.config("type: conv2"))


def plugin_import(env):
    return env.run("check", env.config("type: broken_plugin"))


def not_a_layer(env):
    return env.run("check", env.config("type: not_a_layer"))


def outdated_layer(env):
    return env.run("check", env.config("type: old_add_param"))


def clash(env):
    return env.run("check", env.config("type: dup"))


def wrong_distribution(env):
    return env.run("check", env.config("type: paracnn-extras:dense"))


def new_layer_name(env):
    return env.run("new-layer", "Bad-Name")


def new_layer_taken(env):
    return env.run("new-layer", "dense")


def new_layer_exists(env):
    (env.path / "plugins" / "paracnn-my-layer").mkdir(parents=True)
    return env.run("new-layer", "my_layer", "--dir", "plugins")


def train_needs_config(env):
    return env.run("train")


def dataset_missing(env):
    text = (CONFIG.replace("dataset: synthetic", "dataset: mnist").replace("[1, 6, 6]", "[1, 28, 28]")
            .replace("units: 3", "units: 10"))
    (env.path / "data").mkdir()
    env.monkeypatch.delenv("PARACNN_DATA_DIR", raising=False)
    env.monkeypatch.setenv("PARACNN_CACHE_DIR", str(env.path / "cache"))
    return env.run("train", env.config("type: relu", text), "--set", "data.download=false",
                   "--data-dir", "data", "--run-dir", "runs/x")


def checkpoint_missing(env):
    return env.run("evaluate", "--checkpoint", "runs/x/checkpoints/last.json")


def run_folder(env):
    (env.path / "runs").write_text("a file in the way")
    return env.train("type: relu")


def run_folder_taken(env):
    env.train("type: relu")
    return env.train("type: relu")


def compare_architectures(env):
    env.train("type: relu")
    env.run("train", env.config("type: tanh"), "--run-dir", "runs/y", "--no-progress")
    return env.run("compare", "runs/x", "runs/y")


def image_problem(env):
    image = pytest.importorskip("PIL.Image")
    env.train("type: relu")
    image.new("L", (40, 40), 255).save(env.path / "blank.png")
    return env.run("predict", "--checkpoint", "runs/x", "blank.png")


def cannot_export(env):
    pytest.importorskip("safetensors")
    env.train("type: scale")
    return env.run("export", "--checkpoint", "runs/x", "x.safetensors")


def cannot_write(env):
    pytest.importorskip("safetensors")
    env.train("type: relu")
    (env.path / "x.safetensors").write_text("someone's file")
    return env.run("export", "--checkpoint", "runs/x", "x.safetensors")


def plugin_failed(env):
    return env.run("check", env.config("type: raises_in_build"))


def too_much_memory(env):
    env.monkeypatch.setattr("paracnn.memory.available_memory", lambda: 10 * 10**9)
    text = CONFIG.replace("input_shape: [1, 6, 6]", "input_shape: [1, 20000, 20000]").replace(
        "image_shape: [1, 6, 6], num_classes: 3, train_size: 16, test_size: 8",
        "image_shape: [1, 20000, 20000], num_classes: 3, train_size: 1, test_size: 1")
    return env.run("summary", env.config("type: relu", text))


def ray_missing(env):
    env.monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    return env.train("type: relu", "--backend", "ray", "--workers", "2")


def contract(env):
    return env.run("check", env.config("type: short_dx"))


def contract_in_training(env):
    return env.train("type: assigns_grads", "--workers", "0")


def gradient_check(env):
    return env.run("check", env.config("type: wrong_gradient"))


def check_layer_failed(env):
    try:
        check_layer(ShortDx, {}, (4,))
    except AssertionError as e:
        return None, str(e)
    raise AssertionError("check_layer passed a layer whose dx is short")


def layer_raised(env):
    return env.run("check", env.config("type: raises"))


def worker_task(env):
    return env.train("{type: flaky, error: value, phase: forward}", "--workers", "2")


def workers_died(env):
    (env.path / "kill").touch()
    return env.train("{type: killer, marker: kill, once: false}", "--workers", "2",
                     "--set", "train.max_worker_failures=0")


def diverged(env):
    return env.train("{type: nan_after, samples: 4}", "--workers", "0")


def interrupted(env):
    (env.path / "stop").touch()
    return env.train("{type: interrupts, marker: stop}", "--workers", "0")


TRIGGERS = {
    "yaml-syntax": yaml_syntax, "config-key": config_key, "config-value": config_value,
    "shape": shape, "output-classes": output_classes, "model-too-large": model_too_large,
    "set-option": set_option, "usage": usage, "unknown-layer": unknown_layer,
    "plugin-import": plugin_import, "not-a-layer": not_a_layer, "clash": clash,
    "wrong-distribution": wrong_distribution, "new-layer-name": new_layer_name,
    "new-layer-taken": new_layer_taken, "new-layer-exists": new_layer_exists,
    "train-needs-config": train_needs_config, "dataset-missing": dataset_missing,
    "checkpoint-missing": checkpoint_missing, "run-folder": run_folder, "contract": contract,
    "run-folder-taken": run_folder_taken, "compare-architectures": compare_architectures,
    "image-problem": image_problem, "cannot-export": cannot_export, "ray-missing": ray_missing,
    "contract-in-training": contract_in_training, "gradient-check": gradient_check,
    "check-layer": check_layer_failed, "layer-raised": layer_raised, "worker-task": worker_task,
    "workers-died": workers_died, "diverged": diverged, "interrupted": interrupted,
    "outdated-layer": outdated_layer, "cannot-write": cannot_write, "plugin-failed": plugin_failed,
    "too-much-memory": too_much_memory,
}


@pytest.mark.parametrize("ident", sorted(TRIGGERS))
def test_the_example_message_is_what_paracnn_reports(env, ident):
    code, message = TRIGGERS[ident](env)
    _, codes, example, _ = rows()[ident]
    pattern = ".*".join(map(re.escape, example.split("...")))
    assert re.fullmatch(pattern, message), f"{ident}: documented\n  {example}\nbut paracnn said\n  {message}"
    assert code in codes if code is not None else codes == [], (ident, code)
