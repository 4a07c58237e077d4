"""``paracnn new-layer``: the generated package has the right files, installs with pip and passes its tests.

The install goes into a throwaway venv under tmp_path that sees the site-packages
of the interpreter running this suite (so paracnn, pytest and setuptools are
there without a network); that environment itself is never touched.
"""

import argparse
import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from paracnn.errors import ParacnnError
from paracnn.scaffold import add_parser, check_name, new_layer, package_names, run

NAME = "scaffold_probe"
FILES = ["README.md", "paracnn_scaffold_probe/__init__.py", "paracnn_scaffold_probe/scaffold_probe.py",
         "pyproject.toml", "tests/test_scaffold_probe.py"]


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def test_package_files(tmp_path):
    path = new_layer(NAME, tmp_path)
    assert path == tmp_path / "paracnn-scaffold-probe"
    assert files_under(path) == FILES
    assert os.listdir(tmp_path) == ["paracnn-scaffold-probe"]  # no scratch folder left
    pyproject = (path / "pyproject.toml").read_text()
    assert 'name = "paracnn-scaffold-probe"' in pyproject
    assert ('[project.entry-points."paracnn.layers"]\n'
            'scaffold_probe = "paracnn_scaffold_probe.scaffold_probe:ScaffoldProbe"') in pyproject
    for py in path.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")
    layer = (path / "paracnn_scaffold_probe/scaffold_probe.py").read_text()
    assert "class ScaffoldProbe(Layer):" in layer
    assert all(f"def {m}(" in layer for m in ("build", "forward", "backward", "get_config"))
    assert "type: scaffold_probe" in (path / "README.md").read_text()


def test_pyproject_is_valid_toml(tmp_path):
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((new_layer(NAME, tmp_path) / "pyproject.toml").read_text())
    assert data["project"]["name"] == "paracnn-scaffold-probe"
    assert data["project"]["entry-points"]["paracnn.layers"] == {
        "scaffold_probe": "paracnn_scaffold_probe.scaffold_probe:ScaffoldProbe"}


def test_default_directory_is_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert new_layer("probe2") == tmp_path / "paracnn-probe2"


def test_creates_missing_parent_directories(tmp_path):
    assert new_layer("probe3", tmp_path / "a" / "b").is_dir()


def test_names():
    assert package_names("scaled_tanh") == {
        "name": "scaled_tanh", "dist": "paracnn-scaled-tanh", "module": "paracnn_scaled_tanh",
        "cls": "ScaledTanh", "paracnn_version": package_names("x")["paracnn_version"]}


@pytest.mark.parametrize("name,fragment", [
    ("ScaledTanh", "use lowercase letters"), ("scaled-tanh", "use lowercase letters"),
    ("2tanh", "starting with a letter"), ("a__b", "single underscores"), ("tanh_", "invalid"),
    ("", "invalid layer name ''"), ("x" * 41, "at most 40"),
    ("lambda", "it is a Python keyword"),
    ("relu", "layer type 'relu' is already registered by paracnn"),
])
def test_invalid_names_are_refused(tmp_path, name, fragment):
    with pytest.raises(ParacnnError, match=fragment):
        new_layer(name, tmp_path)
    assert os.listdir(tmp_path) == []


def test_an_existing_directory_is_never_overwritten(tmp_path):
    path = new_layer(NAME, tmp_path)
    (path / "README.md").write_text("mine")
    with pytest.raises(ParacnnError, match="already exists; remove it or choose another --dir"):
        new_layer(NAME, tmp_path)
    assert (path / "README.md").read_text() == "mine"


def test_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ParacnnError, match="is a file, not a directory"):
        new_layer(NAME, tmp_path / "f")


def test_unwritable_directory_is_a_one_line_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ParacnnError, match="cannot create .*paracnn-scaffold-probe: "):
        new_layer(NAME, tmp_path / "f" / "sub")


def test_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="paracnn")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["new-layer", NAME, "--dir", str(tmp_path)])
    assert args.handler is run
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert f"created {tmp_path / 'paracnn-scaffold-probe'}" in out and "pip install -e" in out
    with pytest.raises(ParacnnError):
        args.handler(args)


def test_paracnn_new_layer_is_a_subcommand(tmp_path, capsys):
    from paracnn import cli
    # NOTE: no skip when the command is missing: removing it must fail here.
    with pytest.raises(SystemExit) as done:
        cli.main(["new-layer", "--help"])
    assert done.value.code == 0, "paracnn does not register the new-layer subcommand"
    assert capsys.readouterr().out.startswith("usage: paracnn new-layer ")
    assert cli.main(["new-layer", NAME, "--dir", str(tmp_path)]) == 0
    assert cli.main(["new-layer", NAME, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paracnn: error: ") and "already exists" in err and "\n" not in err
    assert cli.main(["new-layer", "Bad-Name", "--dir", str(tmp_path)]) == 2


def test_check_name_accepts_a_free_name():
    assert check_name("scaled_tanh2") == "scaled_tanh2"


# -- the generated package, installed for real ------------------------------------------

TRAIN_A_STEP = textwrap.dedent("""
    import json
    from paracnn.config import config_from_dict
    from paracnn.optim import make_optimizer
    from paracnn.registry import get_registry

    registry = get_registry()
    entry = registry.entry("scaffold_probe")
    config = config_from_dict({
        "model": {"input_shape": [1, 5, 5], "layers": [
            {"type": "conv2d", "filters": 2, "kernel_size": 3},
            {"type": "paracnn-scaffold-probe:scaffold_probe", "scale": 0.5},
            {"type": "flatten"},
            {"type": "dense", "units": 2}]},
        "data": {"dataset": "synthetic",
                 "synthetic": {"image_shape": [1, 5, 5], "num_classes": 2}},
        "train": {"lr": 0.05}})
    model = config.build_model()
    x = [((i * 7) % 11) / 11 - 0.5 for i in range(25)]
    losses = []
    weights = list(model.get_weights())
    optimizer = make_optimizer(config.data["train"])
    for step in range(3):
        model.set_weights(weights)
        model.zero_grad()
        loss, _ = model.train_sample(x, 1, seed=step)
        losses.append(loss)
        weights = optimizer.step(weights, list(model.get_grads()), 0.05)
    print(json.dumps({"dist": entry.distribution, "version": entry.version,
                      "class": type(model.layers[1]).__name__,
                      "params": list(model.layers[1].params), "losses": losses}))
""")


def can_build_wheels_offline():
    """Whether setuptools is importable here and builds wheels (bdist_wheel: 70.1+, or wheel)."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])
    if version >= (70, 1):
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def outer_site_dirs():
    """The site-packages folders of this interpreter, in order (a venv's own if it is one)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def make_venv(path, call):
    """A venv at ``path`` whose Python also sees this interpreter's packages; returns its python.

    ``--system-site-packages`` would expose the *base* interpreter's packages,
    which is not where paracnn is when this suite itself runs in a venv. A .pth
    line ``import site; site.addsitedir(...)`` adds this interpreter's folders
    after the venv's own, processing their .pth files (editable installs) too.
    """
    call(sys.executable, "-m", "venv", "--without-pip", path)
    python = path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = call(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    lines = [f"import site; site.addsitedir({d!r})" for d in outer_site_dirs()]
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(lines) + "\n")
    return python


@pytest.mark.timeout(1500)  # five subprocesses, each allowed 300 s below
def test_generated_package_installs_passes_its_tests_and_trains(tmp_path):
    package = new_layer(NAME, tmp_path)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PARACNN_DISABLE_PLUGINS", "PYTHONPATH")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    # Build offline with this interpreter's setuptools when it can make wheels; otherwise
    # (a fresh 3.12+ venv has no setuptools) pip's isolated build fetches one from the index.
    isolation = []
    if can_build_wheels_offline():
        isolation = ["--no-build-isolation"]
        env["PIP_NO_INDEX"] = "1"

    def call(*args):
        done = subprocess.run([str(a) for a in args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    # No pip of its own: the outer pip installs into whichever interpreter runs it.
    python = make_venv(venv, call)
    call(python, "-m", "pip", "install", "--no-deps", *isolation, "-q", "-e", package)

    out = call(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", package / "tests")
    assert "4 passed" in out

    layers = json.loads(call(python, "-m", "paracnn", "layers", "--json"))["layers"]
    row = next(r for r in layers if r["name"] == NAME)
    assert (row["distribution"], row["version"], row["error"]) == ("paracnn-scaffold-probe", "0.1.0", None)

    result = json.loads(call(python, "-c", TRAIN_A_STEP))
    assert result["dist"] == "paracnn-scaffold-probe" and result["version"] == "0.1.0"
    assert result["class"] == "ScaffoldProbe" and result["params"] == ["weight"]
    assert result["losses"][-1] < result["losses"][0]

    # and none of it leaked into the environment running this suite
    from importlib import metadata
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("paracnn-scaffold-probe")


# -- the example layer is what its name says ---------------------------------------------

def example_names():
    """Every NAME that a ``new-layer NAME`` example in the help texts and the guide uses."""
    from paracnn.cli import EPILOGS
    from paracnn.scaffold import EPILOG
    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    names = re.findall(r"new-layer ([a-z][a-z0-9_]*)", "\n".join([EPILOG, EPILOGS["main"], guide]))
    assert names
    return sorted(set(names))


def generated_description(tmp_path, name):
    """The first docstring line of the generated layer class: what ``paracnn layers`` shows."""
    import importlib.util
    names = package_names(name)
    path = new_layer(name, tmp_path) / names["module"] / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_generated_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.__dict__[names["cls"]]().description()


def test_every_example_name_says_what_the_generated_layer_is(tmp_path):
    # A placeholder (my_layer) promises nothing; any other name must be what the layer computes.
    for name in example_names():
        description = generated_description(tmp_path, name).lower()
        assert name.startswith("my_") or name.replace("_", " ") in description, (name, description)
    assert generated_description(tmp_path / "other", "scaled_tanh").startswith("A scaled tanh")
