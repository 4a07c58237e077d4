"""A checkpoint written before a config key existed still resumes: the key compares as its default."""

import json
from pathlib import Path

from paracnn.config import load_config
from paracnn.train import train

REPO = Path(__file__).resolve().parents[1]


def _quiet(line):
    pass


def test_a_checkpoint_from_before_the_augment_label_noise_and_adam_keys_resumes(tmp_path):
    config = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=1"])
    train(config, run_dir=tmp_path / "old", progress=False, log=_quiet)
    last = tmp_path / "old" / "checkpoints" / "last.json"
    state = json.loads(last.read_text())
    for section, key in (("data", "augment"), ("data", "label_noise"), ("train", "betas"),
                         ("train", "eps"), ("train", "warmup_steps")):
        del state["config"][section][key]
    last.write_text(json.dumps(state))
    longer = load_config(REPO / "configs" / "tiny.yaml", ["train.epochs=2"])
    resumed = train(longer, resume=tmp_path / "old", progress=False, log=_quiet)
    straight = train(longer, run_dir=tmp_path / "straight", progress=False, log=_quiet)
    assert resumed["epochs"] == 2 and resumed["weights_sha256"] == straight["weights_sha256"]
