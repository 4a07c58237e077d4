"""The public model API: logits, probabilities, activations, input gradients, parameters by name."""

import math
import random

import pytest

from paracnn.errors import CheckpointError
from paracnn.layers.conv2d import Conv2d
from paracnn.layers.dense import Dense
from paracnn.layers.dropout import Dropout
from paracnn.layers.flatten import Flatten
from paracnn.layers.maxpool2d import MaxPool2d
from paracnn.layers.relu import ReLU
from paracnn.model import Sequential


def small_model(seed=0):
    model = Sequential([Conv2d(3, 3), ReLU(), MaxPool2d(2), Flatten(), Dropout(0.5), Dense(5)],
                       (1, 8, 8), ["conv2d", "relu", "maxpool2d", "flatten", "dropout", "dense"])
    model.build(seed=seed)
    return model


def sample(n=64, seed=1):
    rng = random.Random(seed)
    return [rng.uniform(-0.5, 0.5) for _ in range(n)]


def test_activations_give_every_layers_output_with_its_shape_and_end_in_the_logits():
    model, x = small_model(), sample()
    acts = model.activations(x)
    assert [a.index for a in acts] == list(range(6))
    assert [a.type for a in acts] == model.types
    assert [a.shape for a in acts] == [(3, 6, 6), (3, 6, 6), (3, 3, 3), (27,), (27,), (5,)]
    assert all(len(a.values) == math.prod(a.shape) for a in acts)
    assert acts[1].values == [max(0.0, v) for v in acts[0].values]
    assert acts[-1].values == model.logits(x)


def test_probabilities_are_the_softmax_of_the_logits_in_inference_mode():
    model, x = small_model(), sample()
    logits, probs = model.logits(x), model.probabilities(x)
    assert sum(probs) == pytest.approx(1.0)
    assert probs.index(max(probs)) == logits.index(max(logits))
    total = sum(math.exp(v) for v in logits)
    assert probs == pytest.approx([math.exp(v) / total for v in logits])
    assert model.logits(x) == logits  # dropout is off: the same answer every time


@pytest.mark.parametrize("class_index", [None, 2])
def test_input_gradient_matches_finite_differences_of_the_logit(class_index):
    model, x = small_model(), sample()
    grad, logits = model.input_gradient(x, class_index)
    c = logits.index(max(logits)) if class_index is None else class_index
    h = 1e-6
    for i in range(0, len(x), 5):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        numeric = (model.logits(up)[c] - model.logits(down)[c]) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_input_gradient_leaves_parameter_gradients_and_the_first_layer_as_they_were():
    model, x = small_model(), sample()
    model.train_sample(x, 1, seed=3)           # dense now holds deferred work
    before = model.get_grads()
    model.input_gradient(sample(seed=2))
    assert model.layers[0].needs_input_grad is False
    assert model.get_grads() == before
    with pytest.raises(ValueError, match="out of range"):
        model.input_gradient(x, 9)


def test_named_grads_are_the_flat_gradient_split_by_name_with_deferred_work_done():
    model, x = small_model(), sample()
    model.train_sample(x, 4, seed=0)
    named = model.named_grads()
    assert list(named) == ["0.weight", "0.bias", "5.weight", "5.bias"]
    assert [v for g in named.values() for v in g] == list(model.get_grads())
    assert any(named["5.weight"])  # dense's deferred weight gradient was completed


def test_param_layout_names_tensors_as_torch_sequential_does():
    model = small_model()
    assert model.param_layout() == [("0.weight", (3, 1, 3, 3)), ("0.bias", (3,)),
                                    ("5.weight", (5, 27)), ("5.bias", (5,))]


def test_state_dict_round_trips_and_load_checks_names_and_sizes():
    a, b = small_model(seed=0), small_model(seed=1)
    assert a.get_weights() != b.get_weights()
    b.load_state_dict(a.state_dict())
    assert b.get_weights() == a.get_weights()
    state = a.state_dict()
    state["0.bias"] = state["0.bias"][:2]
    with pytest.raises(CheckpointError, match=r"0\.bias holds 2 values but the model's 0\.bias \(3,\)"):
        b.load_state_dict(state)
    state = a.state_dict()
    state["7.weight"] = state.pop("5.weight")
    with pytest.raises(CheckpointError, match=r"missing \['5\.weight'\], unexpected \['7\.weight'\]"):
        b.load_state_dict(state)
