import pickle
import random

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn.layers.conv2d import Conv2d
from paracnn.testing import check_layer

from . import reference

CASES = [
    ({"filters": 4, "kernel_size": 3}, (2, 7, 6)),
    ({"filters": 3, "kernel_size": [3, 2], "stride": 2, "padding": 1, "bias": False}, (2, 7, 6)),
    ({"filters": 2, "kernel_size": 3, "stride": [2, 3], "padding": [2, 1]}, (3, 9, 8)),
    ({"filters": 2, "kernel_size": 4, "padding": "same"}, (2, 5, 6)),
    ({"filters": 2, "kernel_size": 3, "padding": "same"}, (1, 4, 4)),
    ({"filters": 6, "kernel_size": 5}, (1, 28, 28)),
]


def _pads(config):
    k = config["kernel_size"]
    kh, kw = (k, k) if isinstance(k, int) else k
    p = config.get("padding", "valid")
    if p == "valid":
        return (0, 0), (0, 0)
    if p == "same":
        before = ((kh - 1) // 2, (kw - 1) // 2)
        return before, (kh - 1 - before[0], kw - 1 - before[1])
    p = (p, p) if isinstance(p, int) else tuple(p)
    return p, p


@pytest.mark.parametrize("config,shape", CASES)
def test_forward_matches_naive_reference(config, shape):
    rng = random.Random(1)
    conv = Conv2d(**config)
    out_shape = conv.build(shape, rng)
    conv.params.get("bias", [])[:] = [rng.uniform(-1, 1) for _ in conv.params.get("bias", [])]
    x = [rng.uniform(-1, 1) for _ in range(shape[0] * shape[1] * shape[2])]
    k = config["kernel_size"]
    kernel = (k, k) if isinstance(k, int) else tuple(k)
    s = config.get("stride", 1)
    stride = (s, s) if isinstance(s, int) else tuple(s)
    before, after = _pads(config)
    expected, expected_shape = reference.conv2d(x, shape, conv.params["weight"],
                                                conv.params.get("bias"), config["filters"],
                                                kernel, stride, before, after)
    assert out_shape == expected_shape
    got = conv.forward(x)
    assert len(got) == len(expected)
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-12


@pytest.mark.parametrize("config,shape", CASES[:5])
def test_gradients(config, shape):
    report = check_layer(Conv2d, config, shape)
    assert report.max_rel_error() < 1e-5
    assert set(report.worst) == {"input", "weight"} | ({"bias"} if config.get("bias", True) else set())


def test_same_padding_keeps_size():
    assert Conv2d(8, 3, padding="same").build((3, 11, 9), random.Random(0)) == (8, 11, 9)


def test_lenet_first_layer_shape_and_params():
    conv = Conv2d(filters=6, kernel_size=5)
    assert conv.build((1, 28, 28), random.Random(0)) == (6, 24, 24)
    assert conv.num_params() == 6 * 25 + 6
    assert conv.param_shapes == {"weight": (6, 1, 5, 5), "bias": (6,)}
    assert conv.macs() == 6 * 24 * 24 * 25


def test_first_layer_skips_input_gradient_but_still_gets_weight_grads():
    rng = random.Random(0)
    conv = Conv2d(2, 3)
    conv.build((1, 5, 5), rng)
    conv.needs_input_grad = False
    conv.forward([rng.random() for _ in range(25)])
    assert conv.backward([1.0] * 18) is None
    assert any(conv.grads["weight"]) and conv.grads["bias"] == [9.0, 9.0]


def test_zero_upstream_gradient_adds_nothing():
    conv = Conv2d(3, 2)
    conv.build((2, 4, 4), random.Random(0))
    conv.forward([0.5] * 32)
    dx = conv.backward([0.0] * 27)
    assert dx == [0.0] * 32 and not any(conv.grads["weight"]) and not any(conv.grads["bias"])


@pytest.mark.parametrize("kwargs,key", [
    ({"filters": 0, "kernel_size": 3}, "filters"),
    ({"filters": -2, "kernel_size": 3}, "filters"),
    ({"filters": "six", "kernel_size": 3}, "filters"),
    ({"filters": 2, "kernel_size": 0}, "kernel_size"),
    ({"filters": 2, "kernel_size": [3, 3, 3]}, "kernel_size"),
    ({"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
    ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    ({"filters": 2, "kernel_size": 3, "padding": -1}, "padding"),
    ({"filters": 2, "kernel_size": 3, "padding": "same", "stride": 2}, "padding"),
    ({"filters": 2, "kernel_size": 3, "bias": "yes"}, "bias"),
    ({"filters": 2, "kernel_size": 3, "init": "he_unifrom"}, "init"),
])
def test_bad_arguments_name_their_key(kwargs, key):
    with pytest.raises(ConfigError) as e:
        Conv2d(**kwargs)
    assert e.value.key == key


def test_kernel_larger_than_input_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"kernel_size 5x5 is larger than its \(padded\) input \(16, 4, 4\)"):
        Conv2d(8, 5).build((16, 4, 4), random.Random(0))


def test_flat_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="expects an image input"):
        Conv2d(8, 3).build((256,), random.Random(0))


def test_pickle_drops_per_sample_state_and_rebuilds_tables():
    rng = random.Random(0)
    conv = Conv2d(2, 3)
    conv.build((1, 6, 6), rng)
    x = [rng.random() for _ in range(36)]
    y = conv.forward(x)
    blob = pickle.dumps(conv)
    clone = pickle.loads(blob)
    assert not hasattr(clone, "_patches")
    assert clone.forward(x) == y
    # The index tables are rebuilt, not shipped: the pickle stays small.
    assert len(blob) < 4000
