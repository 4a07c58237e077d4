"""The configs that rebuild seed 002's and seed 004's networks have their papers' shapes and counts."""

import json
from pathlib import Path

from paracnn.cli import main
from paracnn.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _summary(name, capsys):
    assert main(["summary", str(REPO / "configs" / name), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_verypoor_cnn_has_seed_002s_5070_parameters_and_setup(capsys):
    s = _summary("verypoor-cnn.yaml", capsys)
    # conv filters 4x5x5 = 100; dense 144x32 + 32; dense 32x10 + 10 (the paper's count)
    assert [r["params"] for r in s["layers"] if r["params"]] == [100, 4640, 330]
    assert s["total_params"] == 5070 and s["layers"][3]["output_shape"] == [144]
    c = load_config(REPO / "configs" / "verypoor-cnn.yaml").data
    assert (c["data"]["dataset"], c["data"]["train_limit"], c["data"]["test_limit"]) == ("fashion-mnist", 1500, 600)
    assert (c["train"]["batch_size"], c["train"]["lr"], c["train"]["epochs"]) == (16, 0.008, 25)


def test_mnist_cnn_has_seed_004s_two_conv_blocks_and_dropout(capsys):
    s = _summary("mnist-cnn.yaml", capsys)
    assert [r["type"] for r in s["layers"]] == ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d",
                                                "flatten", "dense", "relu", "dropout", "dense"]
    assert [r["output_shape"] for r in s["layers"] if r["type"] == "maxpool2d"] == [[32, 14, 14], [64, 7, 7]]
    # nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3), nn.Linear(64*7*7, 128), nn.Linear(128, 10)
    assert s["total_params"] == 320 + 18496 + 401536 + 1290 == 421642
    c = load_config(REPO / "configs" / "mnist-cnn.yaml").data
    assert c["model"]["layers"][9]["rate"] == 0.5
    assert (c["train"]["optimizer"], c["train"]["lr"], c["train"]["momentum"]) == ("adam", 0.001, 0.0)
