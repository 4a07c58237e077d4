"""The same seed gives bit-identical weights whatever the workers and start method."""

import multiprocessing

import pytest

from paracnn.parallel import auto_micro_batch, micro_batches, sample_seed
from paracnn.train import train

from .helpers import conv_dict, quiet, tiny_config, tiny_dict


def run(tmp_path, name, cfg=None, **kw):
    from paracnn.config import config_from_dict

    config = config_from_dict(cfg) if cfg is not None else tiny_config()
    return train(config, run_dir=tmp_path / name, progress=False, log=quiet, **kw)


def test_workers_0_1_2_4_give_identical_weights(tmp_path):
    results = {w: run(tmp_path, f"w{w}", workers=w) for w in (0, 1, 2, 4)}
    hashes = {w: r["weights_sha256"] for w, r in results.items()}
    assert len(set(hashes.values())) == 1, hashes
    # the losses and accuracies reported agree too, to the bit
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
    rows = {w: [tuple(rec[k] for k in keys) for rec in r["history"]] for w, r in results.items()}
    assert rows[0] == rows[1] == rows[2] == rows[4]
    assert results[0]["steps"] == 10 and results[0]["epochs"] == 2


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_start_methods_match_in_process(tmp_path, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    cfg = conv_dict(epochs=1)
    # NOTE: dropout draws its mask from the per-sample seed, so a seed that depends on
    # the process (hash() of a str differs in every spawned interpreter) changes the bits.
    cfg["model"]["layers"].insert(4, {"type": "dropout", "rate": 0.25})
    serial = run(tmp_path, "serial", cfg, workers=0)
    pooled = run(tmp_path, method, cfg, workers=2, start_method=method)
    assert pooled["weights_sha256"] == serial["weights_sha256"]


ADAM = {"lr": 0.01, "momentum": 0.0, "nesterov": False, "betas": [0.8, 0.99]}


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("optimizer, decay", [("adam", 1e-3), ("adamw", 0.1)])
def test_adam_at_0_and_2_workers_gives_identical_weights(tmp_path, method, optimizer, decay):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    cfg = tiny_dict(optimizer=optimizer, weight_decay=decay, **ADAM)
    serial = run(tmp_path, "serial", cfg, workers=0)
    pooled = run(tmp_path, method, cfg, workers=2, start_method=method)
    assert pooled["weights_sha256"] == serial["weights_sha256"]
    # a different optimiser really ran: not SGD's weights
    assert serial["weights_sha256"] != run(tmp_path, "sgd", tiny_dict(), workers=0)["weights_sha256"]


def test_default_start_method_and_uneven_micro_batches(tmp_path):
    # 16 samples in micro-batches of 5: 5+5+5+1, spread over 3 workers.
    cfg = tiny_dict(micro_batch=5, epochs=1)
    serial = run(tmp_path, "serial", cfg, workers=0)
    pooled = run(tmp_path, "pooled", cfg, workers=3)
    assert pooled["weights_sha256"] == serial["weights_sha256"]
    assert pooled["micro_batch"] == 5


def test_the_micro_batch_size_changes_the_arithmetic_not_the_worker_count(tmp_path):
    # Different micro-batch sizes sum in a different association, so the
    # weights may differ in the last bits; but they must stay close.
    a = run(tmp_path, "a", tiny_dict(micro_batch=1, epochs=1), workers=0)
    b = run(tmp_path, "b", tiny_dict(micro_batch=16, epochs=1), workers=0)
    assert max(abs(x - y) for x, y in zip(a["weights"], b["weights"])) < 1e-9


def test_a_different_seed_gives_different_weights(tmp_path):
    a = run(tmp_path, "a", tiny_dict(epochs=1), workers=0)
    b = run(tmp_path, "b", tiny_dict(epochs=1, seed=4), workers=0)
    assert a["weights_sha256"] != b["weights_sha256"]


def test_micro_batch_split_is_fixed():
    assert auto_micro_batch(64) == 8
    assert auto_micro_batch(1) == 1
    assert auto_micro_batch(10_000) == 32
    assert micro_batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]


#: ``sample_seed`` pinned: computed once (paracnn 0.1.0) by its blake2b rule, i.e.
#: ``int.from_bytes(hashlib.blake2b(b"paracnn-sample:1:2:3", digest_size=8).digest(),
#: "little") >> 1`` for (1, 2, 3). Any change here changes every dropout mask, and so
#: the weights of every run with dropout: a new rule needs a new paracnn major version.
PINNED_SEEDS = {
    (0, 0, 0): 1873118263313409538,
    (1, 2, 3): 5882835470572372415,
    (3, 0, 95): 7457036271900178653,
    (2 ** 31, 7, 59999): 1862871377296633040,
}


def test_sample_seed_depends_on_seed_epoch_and_index_only():
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 450
    assert sample_seed(1, 2, 3) == sample_seed(1, 2, 3)
    assert 0 <= sample_seed(0, 0, 0) < 2 ** 63
    # the same in every process and on every run, not just twice in this one
    assert {key: sample_seed(*key) for key in PINNED_SEEDS} == PINNED_SEEDS
