"""Fuzzing every command with damaged copies of the files it reads.

A real run (its checkpoint, config, metrics, steps and eval.json), a config
and a picture are copied into a scratch folder; one of them is damaged (cut
short, bytes flipped or spliced in, or one JSON value replaced by anything
JSON can hold), and one command is run on the copy through
``paracnn.cli.main``. Whatever the damage, the command must end with an
exit status in {0, 1, 2, 3}, no traceback on stderr, and no file outside the
scratch folder touched: links planted in the scratch folder point at a
victim file outside it, which must never change.

With ``CI`` set the ``ci`` profile of ``tests/conftest.py`` derandomizes the
examples. For a deeper search set ``PARACNN_FUZZ_COMMAND_EXAMPLES`` (examples per command,
e.g. 100; a plot takes about a second).
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
Image = pytest.importorskip("PIL.Image")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from paracnn.cli import main  # noqa: E402
from paracnn.config import config_from_dict  # noqa: E402
from paracnn.train import train  # noqa: E402

from .parallel.helpers import tiny_dict  # noqa: E402

#: examples per command (8 commands): the whole test stays well under a minute.
FUZZ = settings(max_examples=int(os.environ.get("PARACNN_FUZZ_COMMAND_EXAMPLES", 8)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: the files an example may damage, relative to the scratch folder.
TARGETS = ["run/checkpoints/last.json", "run/config.yaml", "run/metrics.jsonl", "run/steps.jsonl",
           "run/eval.json", "digit.png", "config.yaml"]

#: each command on the scratch folder's files; every one runs in-process, without workers.
COMMANDS = {
    "summary": ["summary", "config.yaml"],
    "check": ["check", "config.yaml"],
    "evaluate": ["evaluate", "run", "--workers", "0", "--json"],
    "resume": ["train", "--resume", "run", "--set", "train.epochs=2", "--workers", "0", "--no-progress"],
    "compare": ["compare", "run", "other"],
    "plot": ["plot", "run", "--images", "1"],
    "predict": ["predict", "--checkpoint", "run", "digit.png"],
    "export": ["export", "--checkpoint", "run", "out.safetensors"],
}

#: where planted links point from inside the scratch folder: names paracnn writes or used to.
PLANTED = [".out.safetensors.tmp", "run/plots", "run/.eval.json.tmp", "out.safetensors"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """``(root, scratch template)``: a trained run, a config and a picture, and a victim outside."""
    root = tmp_path_factory.mktemp("fuzz-commands")
    template = root / "template"
    cfg = tiny_dict(epochs=1)
    cfg["data"]["validation"] = 0.0
    cfg["model"]["input_shape"] = cfg["data"]["synthetic"]["image_shape"] = [1, 12, 12]
    train(config_from_dict(cfg), workers=0, run_dir=template / "run", progress=False, log=lambda line: None)
    shutil.copytree(template / "run", template / "other")
    (template / "config.yaml").write_text((template / "run" / "config.yaml").read_text())
    img = Image.new("L", (40, 40), 230)
    img.paste(20, (12, 8, 26, 32))
    img.save(template / "digit.png")
    (root / "outside").mkdir()
    (root / "outside" / "victim").write_text("must never change")
    return root, template


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def damage(data, path, how):
    """Damage the file at ``path`` in the way ``how`` names, drawing what it needs from ``data``."""
    raw = path.read_bytes()
    if how == "truncate":
        path.write_bytes(raw[:data.draw(st.integers(0, max(0, len(raw) - 1)))])
    elif how == "flip":
        out = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            if out:
                out[data.draw(st.integers(0, len(out) - 1))] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(out))
    elif how == "splice":
        at = data.draw(st.integers(0, len(raw)))
        path.write_bytes(raw[:at] + data.draw(st.binary(max_size=64)) + raw[at:])
    else:
        path.write_text(_replace_json(data, path.read_text(errors="replace"), path.suffix))


def _replace_json(data, text, suffix):
    """One value somewhere in the JSON (one line of a .jsonl), replaced by any JSON value."""
    lines = text.splitlines() if suffix == ".jsonl" else [text]
    if not lines:
        return json.dumps(data.draw(json_values))
    i = data.draw(st.integers(0, len(lines) - 1))
    try:
        doc = json.loads(lines[i]) if suffix != ".yaml" else yaml.safe_load(lines[i])
    except Exception:  # noqa: BLE001 - already damaged: replace it whole
        doc = None
    parent, key, node = None, None, doc
    for _ in range(data.draw(st.integers(0, 4))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        parent, key = node, data.draw(st.sampled_from(keys))
        node = parent[key]
    value = data.draw(json_values)
    if parent is None:
        doc = value
    else:
        parent[key] = value
    lines[i] = json.dumps(doc) if suffix != ".yaml" else yaml.safe_dump(doc)
    return "\n".join(lines) + "\n"


def run_in(folder, argv):
    """``(exit status, stderr)`` of ``paracnn ARGV`` run in ``folder``."""
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


@pytest.mark.parametrize("command", sorted(COMMANDS))
@FUZZ
@given(data=st.data(), target=st.sampled_from(TARGETS), how=st.sampled_from(["truncate", "flip", "splice", "json"]))
def test_every_command_survives_any_damaged_input(pristine, command, data, target, how):
    root, template = pristine
    scratch = Path(tempfile.mkdtemp(dir=root))
    try:
        shutil.copytree(template, scratch, dirs_exist_ok=True)
        for name in data.draw(st.lists(st.sampled_from(PLANTED), unique=True, max_size=2)):
            (scratch / name).symlink_to(root / "outside" / "victim")
        damage(data, scratch / target, how)
        outside = snapshot(root / "outside")
        with pytest.MonkeyPatch.context() as m:
            m.setenv("PARACNN_CACHE_DIR", str(scratch / "cache"))
            code, err = run_in(scratch, COMMANDS[command])
        assert code in (0, 1, 2, 3), (command, target, how, code, err)
        assert "Traceback" not in err, err
        assert snapshot(root / "outside") == outside, (command, target, how)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
