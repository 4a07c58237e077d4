"""The README's commands and example stay true."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

from paracnn.testing import check_layer

from .conftest import missing_layer_types

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_layer_example_passes_the_harness(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "readme_layer.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("readme_layer")
    report = check_layer(module.Scale, {}, (3, 4, 4))
    assert report.checked == {"input": 48, "a": 1}


def test_ci_runs_the_readme_test_command():
    command = re.search(r"Install and run the tests.*?```sh\n(.*?)\n```", README, re.S).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    # NOTE: CI keeps the arguments in two bash arrays, because it runs them under PyPy too.
    pip_args = re.search(r"^PIP_INSTALL_ARGS=\((.*)\)$", ci, re.M).group(1)
    pytest_args = re.search(r"^PYTEST_ARGS=\((.*)\)$", ci, re.M).group(1)
    assert command == f"python -m pip install {pip_args} && python -m pytest {pytest_args}"
    assert 'python -m pip install "${PIP_INSTALL_ARGS[@]}" && python -m pytest "${PYTEST_ARGS[@]}"' in ci


def test_every_shipped_config_is_mentioned_and_summarises():
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        assert f"configs/{config.name}" in README, config.name
        if missing_layer_types(config):
            continue  # needs the example plugin; tests/test_plugins.py covers it when installed
        out = subprocess.run([sys.executable, "-m", "paracnn", "summary", str(config), "--json"],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
