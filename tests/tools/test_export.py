"""paracnn export: safetensors named as PyTorch's nn.Sequential, loaded unchanged by load_state_dict."""

import json
import sys
from array import array

import pytest

from paracnn.checkpoint import save_checkpoint
from paracnn.cli import main
from paracnn.config import config_from_dict
from paracnn.trained import load_model

from .conftest import TINY

safetensors = pytest.importorskip("safetensors")


def read_tensors(path):
    """``{name: (shape, list of floats)}`` and the metadata, through safetensors itself."""
    data = path.read_bytes()
    tensors = {}
    for name, t in safetensors.deserialize(data):
        assert t["dtype"] == "F64"
        values = array("d", bytes(t["data"]))
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = (t["shape"], list(values))
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return tensors, header["__metadata__"]


def test_export_writes_every_tensor_by_name_with_its_shape_and_exact_values(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    out = tmp_path / "tiny.safetensors"
    assert main(["export", "--checkpoint", str(run / "checkpoints" / "last.json"), str(out)]) == 0
    printed = capsys.readouterr().out
    tensors, meta = read_tensors(out)
    model = load_model(run / "checkpoints" / "last.json").model
    assert {n: s for n, (s, _) in tensors.items()} == {n: list(s) for n, s in model.param_layout()}
    assert {n: v for n, (_, v) in tensors.items()} == model.state_dict()  # bit for bit
    modules = json.loads(meta["pytorch_modules"])
    assert meta["format"] == "pt" and len(modules) == len(model.layers)
    assert modules[0] == "nn.Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding='valid', bias=True)"
    assert modules[-1] == "nn.Linear(100, 10, bias=True)"
    assert "nn.Sequential(" in printed and "load_state_dict" in printed


def test_a_residual_block_cannot_be_exported_and_says_why(tmp_path, capsys):
    pytest.importorskip("paracnn_extras")
    cfg = json.loads(json.dumps(TINY))
    cfg["model"]["layers"].insert(3, {"type": "residual", "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": "same"}]})
    path = _checkpoint(cfg, tmp_path)
    code = main(["export", "--checkpoint", str(path), str(tmp_path / "r.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "cannot export layer 3 residual: PyTorch has no built-in residual module" in err
    assert not (tmp_path / "r.safetensors").exists()


def test_without_safetensors_export_is_one_line_naming_the_extra(tiny_run, tmp_path, capsys, monkeypatch):
    run, _ = tiny_run
    monkeypatch.setitem(sys.modules, "safetensors", None)
    code = main(["export", "--checkpoint", str(run / "checkpoints" / "last.json"), str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and 'pip install "paracnn[export]"' in err


def _checkpoint(cfg, tmp_path, seed=0):
    """A checkpoint of ``cfg``'s freshly initialised model, biases made non-zero."""
    config = config_from_dict(cfg)
    model = config.build_model(seed=seed)
    weights = [w + 0.01 * (i % 7) for i, w in enumerate(model.get_weights())]
    model.set_weights(weights)
    return save_checkpoint(tmp_path / "c.json", config=config.data, weights=weights,
                           optimizer={"type": "sgd", "momentum_buffer": None}, epoch=0, step=0,
                           params=model.param_layout())


def _torch_model(path, torch):
    """The nn.Sequential the export describes, loaded with load_state_dict from the file alone."""
    from safetensors.torch import load_file
    nn = torch.nn  # noqa: F841 - the module texts name it
    with safetensors.safe_open(str(path), "pt") as f:
        modules = json.loads(f.metadata()["pytorch_modules"])
    model = eval("nn.Sequential(" + ", ".join(modules) + ")").double()  # noqa: S307 - our own text
    model.load_state_dict(load_file(str(path)))  # strict: every name and shape must match
    return model.eval()


def _max_relative_error(ours, theirs):
    return max(abs(a - b) for a, b in zip(ours, theirs)) / max(abs(b) for b in theirs)


def test_pytorch_gives_paracnns_logits_on_real_images(mnist_run, tmp_path):
    torch = pytest.importorskip("torch")
    run, _ = mnist_run
    checkpoint = run / "checkpoints" / "last.json"
    assert main(["export", "--checkpoint", str(checkpoint), str(tmp_path / "m.safetensors")]) == 0
    net = _torch_model(tmp_path / "m.safetensors", torch)
    trained = load_model(checkpoint)
    test = trained.test_set()
    for i in range(20):
        x, _ = test.sample(i)
        theirs = net(torch.tensor(x, dtype=torch.float64).reshape(1, 1, 28, 28))[0].tolist()
        assert _max_relative_error(trained.model.logits(x), theirs) <= 1e-9


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel lengths")
def test_plugin_layers_and_every_builtin_map_to_torch_modules(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("paracnn_extras")
    cfg = json.loads(json.dumps(TINY))
    cfg["model"]["layers"] = [
        {"type": "conv2d", "filters": 3, "kernel_size": 2, "padding": "same"},
        {"type": "prelu", "num_parameters": 3},
        {"type": "pointwise_conv", "filters": 4},
        {"type": "leaky_relu", "alpha": 0.2},
        {"type": "avgpool2d", "kernel_size": 2},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False},
        {"type": "tanh"},
        {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 7},
        {"type": "sigmoid"},
        {"type": "relu"},
        {"type": "dense", "units": 10, "bias": False}]
    path = _checkpoint(cfg, tmp_path)
    assert main(["export", "--checkpoint", str(path), str(tmp_path / "p.safetensors")]) == 0
    net = _torch_model(tmp_path / "p.safetensors", torch)
    trained = load_model(path)
    test = trained.test_set()
    for i in range(5):
        x, _ = test.sample(i)
        theirs = net(torch.tensor(x, dtype=torch.float64).reshape(1, 1, 12, 12))[0].tolist()
        assert _max_relative_error(trained.model.logits(x), theirs) <= 1e-9


def test_the_pytorch_lines_in_docs_export_md_load_an_export_of_configs_lenet(tmp_path, monkeypatch):
    """The documented nn.Sequential, run as written, takes the file and gives paracnn's logits."""
    torch = pytest.importorskip("torch")
    import random
    import re
    from pathlib import Path

    from paracnn.config import load_config

    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "configs" / "lenet.yaml")
    path = _checkpoint(config.data, tmp_path, seed=3)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--checkpoint", str(path), "lenet.safetensors"]) == 0
    code = re.findall(r"```python\n(.*?)```", (root / "docs" / "export.md").read_text(), re.S)[0]
    namespace = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    rng = random.Random(0)
    x = [rng.uniform(-0.5, 0.5) for _ in range(784)]
    theirs = namespace["model"](torch.tensor(x, dtype=torch.float64).reshape(1, 1, 28, 28))[0].tolist()
    assert _max_relative_error(load_model(path).model.logits(x), theirs) <= 1e-9


def test_export_refuses_to_replace_its_own_checkpoint_under_any_name(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    ckpt = tmp_path / "last.json"
    ckpt.write_bytes((run / "checkpoints" / "last.json").read_bytes())
    before = ckpt.read_bytes()
    for out in (ckpt, tmp_path / "." / "last.json"):
        for flags in ([], ["--overwrite"]):
            assert main(["export", "--checkpoint", str(ckpt), str(out), *flags]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "is an input of this command" in err
    assert ckpt.read_bytes() == before


def test_export_refuses_an_existing_out_unless_overwrite(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    ckpt, out = str(run / "checkpoints" / "last.json"), tmp_path / "w.safetensors"
    out.write_text("precious")
    assert main(["export", "--checkpoint", ckpt, str(out)]) == 2
    assert capsys.readouterr().err == f"paracnn: error: {out} already exists; choose another name, or pass --overwrite to replace it\n"
    assert out.read_text() == "precious"
    assert main(["export", "--checkpoint", ckpt, str(out), "--overwrite"]) == 0
    assert read_tensors(out)[0]


def test_export_never_writes_through_a_link_planted_at_its_temporary_name(tiny_run, tmp_path):
    run, _ = tiny_run
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / ".w.safetensors.tmp").symlink_to(victim)  # the fixed name export used to write
    assert main(["export", "--checkpoint", str(run / "checkpoints" / "last.json"),
                 str(tmp_path / "w.safetensors")]) == 0
    assert victim.read_text() == "keep"


def test_a_failed_export_write_is_one_line_and_leaves_nothing(tiny_run, tmp_path, capsys, monkeypatch):
    from paracnn import files
    run, _ = tiny_run

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    code = main(["export", "--checkpoint", str(run / "checkpoints" / "last.json"), str(tmp_path / "w.st")])
    assert code == 2
    assert capsys.readouterr().err == f"paracnn: error: cannot write {tmp_path / 'w.st'}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


def test_a_folder_at_the_old_fixed_temporary_name_neither_breaks_export_nor_is_touched(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    (tmp_path / ".w.safetensors.tmp").mkdir()  # export's cleanup used to fail on it with a second traceback
    assert main(["export", "--checkpoint", str(run / "checkpoints" / "last.json"), str(tmp_path / "w.safetensors")]) == 0
    assert (tmp_path / ".w.safetensors.tmp").is_dir() and read_tensors(tmp_path / "w.safetensors")[0]
    assert "Traceback" not in capsys.readouterr().err
