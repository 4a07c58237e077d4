"""residual: shortcuts, the flat parameter protocol, seeds, and errors that point inside the block."""

import pickle
import random
from operator import add

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn.layers.dropout import Dropout
from paracnn.model import Sequential
from paracnn.registry import resolve_layer
from paracnn.testing import check_model
from paracnn_extras._compose import inner_seed
from paracnn_extras.residual import Residual

CONV = {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same"}


def built(config, shape, seed=0):
    block = Residual(**config)
    block.build(shape, random.Random(seed))
    return block


def sample(n, seed=1):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(n)]


# -- shortcuts ---------------------------------------------------------------------

def test_identity_shortcut_when_the_layers_keep_the_shape():
    block = built({"layers": [CONV, {"type": "relu"}]}, (3, 4, 4))
    assert block.shortcut is None and block.output_shape == (3, 4, 4)
    assert list(block.params) == ["layers.0.weight", "layers.0.bias"]
    x = sample(48)
    inner = x
    for layer in block.layers:
        inner = layer.forward(inner)
    assert block.forward(x) == list(map(add, inner, x))


def test_projection_when_the_channels_differ():
    block = built({"layers": [{**CONV, "filters": 5}]}, (3, 4, 4))
    assert block.output_shape == (5, 4, 4)
    assert list(block.params) == ["layers.0.weight", "layers.0.bias", "projection.weight"]
    assert block.param_shapes["projection.weight"] == (5, 3, 1, 1)
    assert block.shortcut.stride == (1, 1) and not block.shortcut.bias


def test_strided_projection_when_the_layers_downsample():
    conv = {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": 1}
    block = built({"layers": [conv]}, (2, 7, 6))
    assert block.output_shape == (4, 4, 3)
    assert block.shortcut.stride == (2, 2)
    assert block.shortcut.output_shape == (4, 4, 3)


def test_vectors_are_projected_by_a_dense_layer_without_bias():
    block = built({"layers": [{"type": "dense", "units": 3}]}, (5,))
    assert block.param_shapes["projection.weight"] == (3, 5)
    assert "projection.bias" not in block.params


def test_projection_always_adds_one_even_when_the_shapes_match():
    block = built({"layers": [{"type": "relu"}], "projection": "always"}, (2, 3, 3))
    assert block.param_shapes["projection.weight"] == (2, 2, 1, 1)


def test_projection_none_with_mismatched_shapes_says_what_to_do():
    with pytest.raises(ShapeError) as info:
        built({"layers": [{**CONV, "filters": 6}], "projection": "none"}, (3, 8, 8))
    message = str(info.value)
    assert "cannot add its input (3, 8, 8) to the output (6, 8, 8) of its layers with projection: none" in message
    assert "use projection: auto" in message and "filters: 3 and padding: same" in message


def test_projection_none_with_matching_shapes_is_the_identity():
    block = built({"layers": [CONV], "projection": "none"}, (3, 4, 4))
    assert block.shortcut is None


def test_flatten_inside_the_block_is_refused():
    with pytest.raises(ShapeError, match="one is an image, the other a vector; keep flatten outside"):
        built({"layers": [{"type": "flatten"}, {"type": "dense", "units": 4}]}, (1, 2, 2))


def test_a_shape_no_1x1_projection_can_reach_is_explained():
    with pytest.raises(ShapeError, match="with a strided 1x1 convolution; give its convolutions padding: same"):
        built({"layers": [{"type": "conv2d", "filters": 2, "kernel_size": 3}]}, (2, 6, 6))


def test_inner_shape_errors_name_the_inner_layer():
    with pytest.raises(ShapeError, match=r"inner layers\[1\] conv2d kernel_size 5x5 is larger") as info:
        built({"layers": [{"type": "relu"}, {"type": "conv2d", "filters": 1, "kernel_size": 5}]},
              (1, 3, 3))
    assert info.value.key == ("layers", 1)


# -- the flat parameter protocol ---------------------------------------------------------

def model_with_block(seed=0):
    layers = [Residual(layers=[CONV, {"type": "relu"}, {**CONV, "filters": 2}]),
              resolve_layer("flatten")(), resolve_layer("dense")(units=3)]
    model = Sequential(layers, (3, 4, 4), ["residual", "flatten", "dense"])
    model.build(seed)
    return model


def test_set_weights_reaches_the_inner_layers():
    model = model_with_block()
    block = model.layers[0]
    new = [float(i) for i in range(model.num_params())]
    model.set_weights(new)
    assert list(model.get_weights()) == new
    n = len(block.layers[0].params["weight"])
    assert block.layers[0].params["weight"] == new[:n]
    assert block.params["layers.0.weight"] is block.layers[0].params["weight"]
    assert block.shortcut.params["weight"] == block.params["projection.weight"]


def test_grads_are_synced_and_zeroed_through_the_block():
    # dense defers its weight gradient until sync_grads()
    block = built({"layers": [{"type": "dense", "units": 4}, {"type": "tanh"}]}, (3,))
    block.forward(sample(3))
    block.backward([1.0, -1.0, 0.5, 0.25])
    assert not any(block.grads["layers.0.weight"])
    block.sync_grads()
    assert any(block.grads["layers.0.weight"]) and any(block.grads["projection.weight"])
    block.forward(sample(3))
    block.backward([1.0, -1.0, 0.5, 0.25])
    block.zero_grad()
    block.sync_grads()  # the pending sample was discarded too
    assert not any(g for values in block.grads.values() for g in values)


def test_model_gradient_check_through_the_block():
    report = check_model(model_with_block())
    assert "layers[0] residual.projection.weight" in report.checked


def test_parameter_names_nest():
    block = built({"layers": [{"type": "residual", "layers": [CONV]}, {**CONV, "filters": 4}]},
                  (3, 4, 4))
    assert list(block.params) == ["layers.0.layers.0.weight", "layers.0.layers.0.bias",
                                  "layers.1.weight", "layers.1.bias", "projection.weight"]
    assert block.num_params() == 84 + 112 + 12


def test_needs_input_grad_reaches_the_first_layer_and_the_projection():
    block = built({"layers": [{**CONV, "filters": 4}, {"type": "relu"}]}, (3, 4, 4))
    block.needs_input_grad = False
    assert block.layers[0].needs_input_grad is False and block.shortcut.needs_input_grad is False
    assert block.layers[1].needs_input_grad is True
    block.forward(sample(48))
    assert block.backward(sample(64, seed=2)) is None
    assert any(block.grads["projection.weight"]) and any(block.grads["layers.0.weight"])


def test_get_config_round_trips_with_the_inner_types():
    config = {"layers": [{"type": "paracnn:conv2d", "filters": 2, "kernel_size": 3},
                         {"type": "leaky_relu", "alpha": 0.2}], "projection": "always"}
    out = Residual(**config).get_config()
    assert [spec["type"] for spec in out["layers"]] == ["paracnn:conv2d", "leaky_relu"]
    assert out["layers"][0]["padding"] == "valid" and out["projection"] == "always"
    assert Residual(**out).get_config() == out


def test_pickled_block_keeps_its_views_linked():
    block = built({"layers": [{**CONV, "filters": 4}]}, (3, 4, 4))
    clone = pickle.loads(pickle.dumps(block))
    assert clone.params == block.params
    clone.params["projection.weight"] = [0.0] * 12
    assert clone.shortcut.params["weight"] == [0.0] * 12
    assert block.shortcut.params["weight"] != [0.0] * 12


# -- training mode and seeds -------------------------------------------------------------

def test_seeds_reach_inner_dropout_deterministically():
    block = built({"layers": [{"type": "relu"}, {"type": "dropout", "rate": 0.5}]}, (40,))
    x = [abs(v) + 0.1 for v in sample(40)]
    block.training, block.seed = True, 1234
    first = block.forward(x)
    assert block.layers[1].seed == inner_seed(1234, 1) and block.layers[1].training
    # the inner dropout draws exactly the mask a dropout layer given that seed draws
    alone = Dropout(rate=0.5)
    alone.training, alone.seed = True, inner_seed(1234, 1)
    assert first == list(map(add, alone.forward(x), x))
    assert block.forward(x) == first  # same seed, same mask
    block.seed = 1235
    assert block.forward(x) != first
    assert pickle.loads(pickle.dumps(block)).forward(x) == block.forward(x)


def test_evaluation_mode_reaches_inner_layers():
    block = built({"layers": [{"type": "dropout", "rate": 0.9}]}, (6,))
    block.training, block.seed = False, 7
    x = sample(6)
    assert block.forward(x) == [2 * v for v in x]
    assert block.layers[0].training is False


def test_inner_seeds_differ_per_layer_and_fit_in_63_bits():
    seeds = {inner_seed(s, j) for s in (0, 1, 2**62) for j in range(3)}
    assert len(seeds) == 9 and all(0 <= s < 2**63 for s in seeds)
    assert inner_seed(None, 0) is None


def test_initialisation_is_deterministic_per_rng():
    config = {"layers": [{**CONV, "filters": 4}]}
    a, b = built(config, (3, 4, 4), seed=5), built(config, (3, 4, 4), seed=5)
    assert a.params == b.params
    assert built(config, (3, 4, 4), seed=6).params != a.params


# -- configuration errors carry key paths into the block --------------------------------------

@pytest.mark.parametrize("layers,key,fragment", [
    ([{"type": "conv2d", "filters": 0, "kernel_size": 3}], ("layers", 0, "filters"),
     "layers[0] conv2d: filters must be >= 1, got 0"),
    ([{"type": "relu"}, {"type": "conv2d", "filterz": 2, "kernel_size": 3}], ("layers", 1, "filterz"),
     "unknown key 'filterz' in layers[1] conv2d; did you mean 'filters'?"),
    ([{"type": "conv2"}], ("layers", 0, "type"), "layers[0]: unknown layer type 'conv2'; did you mean 'conv2d'?"),
    ([{"filters": 2}], ("layers", 0), "layers[0] has no type:"),
    (["relu"], ("layers", 0), "layers[0] must be a mapping with type:"),
    ([{"type": "conv2d", "kernel_size": 3}], ("layers", 0), "layers[0] conv2d needs filters:"),
    ([{"type": "conv2d", "filters": 2, "kernel_size": 3, "init": "he"}], ("layers", 0, "init"),
     "unknown initialiser 'he' in init"),
    ([{"type": "residual", "layers": [{"type": "dense", "units": -1}]}],
     ("layers", 0, "layers", 0, "units"), "layers[0] residual: layers[0] dense: units must be >= 1"),
    ([], "layers", "layers must be a non-empty list"),
    ({"type": "relu"}, "layers", "layers must be a non-empty list"),
])
def test_inner_config_errors_carry_composed_key_paths(layers, key, fragment):
    with pytest.raises(ConfigError) as info:
        Residual(layers=layers)
    assert info.value.key == key
    assert fragment in info.value.message


def test_bad_projection_is_reported_at_its_key():
    with pytest.raises(ConfigError, match="projection must be one of auto, always, none") as info:
        Residual(layers=[{"type": "relu"}], projection="sometimes")
    assert info.value.key == "projection"


def test_the_model_prefixes_the_block_position():
    model_cfg = {"input_shape": [1, 8, 8], "layers": [
        {"type": "relu"},
        {"type": "residual", "layers": [{"type": "relu"}, {"type": "conv2d", "filters": -2, "kernel_size": 3}]}]}
    with pytest.raises(ConfigError) as info:
        Sequential.from_config(model_cfg, resolve_layer)
    assert info.value.key == ("layers", 1, "layers", 1, "filters")
    assert info.value.message == "layers[1] residual: layers[1] conv2d: filters must be >= 1, got -2"
