"""The argument checks of ``paracnn.layer`` that every layer's constructor uses, and the base
class's ``add_param`` (keywords after name and shape) and ``prepare`` (derived state).

Each check raises ``ConfigError`` with ``key`` set to the argument's name, which the
config loader turns into the FILE:LINE:COL of that key.
"""

import inspect
import math
import pickle
import random

import pytest

from paracnn.errors import ConfigError, ShapeError
from paracnn.layer import (Layer, OutdatedLayerError, check_bool, check_float, check_init, check_int, check_pair,
                           expect_flat, expect_image)


def fails(check, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        check(*args, **kwargs)
    assert info.value.key == args[0]
    return info.value.message


@pytest.mark.parametrize("kwargs, value, message", [
    ({"minimum": 0.0}, -0.5, "alpha must be >= 0.0, got -0.5"),
    ({"maximum": 1.0}, 1.5, "alpha must be <= 1.0, got 1.5"),
    ({"minimum": 0.0, "maximum": 1.0}, 2, "alpha must be <= 1.0, got 2.0"),
    ({"low": 0.0, "low_open": True}, 0.0, "alpha must be > 0.0, got 0.0"),
    ({"high": 1.0, "high_open": True}, 1.0, "alpha must be < 1.0, got 1.0"),
    ({"low": 0.0, "minimum": 0.5}, 0.25, "alpha must be >= 0.5, got 0.25"),
    ({}, float("nan"), "alpha must be finite, got nan"),
    ({}, "x", "alpha must be a number, got 'x'"),
    ({}, True, "alpha must be a number, got True"),
])
def test_check_float_refuses_values_outside_its_bounds(kwargs, value, message):
    assert fails(check_float, "alpha", value, **kwargs) == message


@pytest.mark.parametrize("kwargs, value", [
    ({"minimum": 0.0}, 0.0), ({"maximum": 1.0}, 1.0), ({"minimum": -1, "maximum": 1}, 0),
    ({"low": 0.0, "high": 1.0}, 1.0),
])
def test_check_float_bounds_are_inclusive_and_it_returns_a_float(kwargs, value):
    result = check_float("alpha", value, **kwargs)
    assert result == value and type(result) is float


def test_check_int_and_check_pair_take_a_maximum():
    assert check_int("filters", 1024, maximum=1024) == 1024
    assert fails(check_int, "filters", 1025, maximum=1024) == "filters must be <= 1024, got 1025"
    assert fails(check_int, "filters", 0) == "filters must be >= 1, got 0"
    assert check_pair("stride", [1, 3], maximum=3) == (1, 3)
    assert fails(check_pair, "stride", [1, 4], 1, 3) == "stride must be <= 3, got 4"
    assert fails(check_pair, "stride", [1, 2, 3]) == "stride must be an integer or a list of two, got [1, 2, 3]"


def test_the_other_checks():
    assert check_bool("bias", False) is False
    assert fails(check_bool, "bias", "no") == "bias must be true or false, got 'no'"
    assert check_init("init", "zeros") == "zeros"
    with pytest.raises(ConfigError):
        check_init("init", "no_such_init")


def test_shape_expectations_start_with_a_verb():
    assert expect_image((1, 28, 28)) == (1, 28, 28) and expect_flat((10,)) == (10,)
    with pytest.raises(ShapeError, match=r"^expects a flat input but gets \(16, 4, 4\); add a flatten"):
        expect_flat((16, 4, 4))
    with pytest.raises(ShapeError, match=r"^expects an image input .* but gets \(10,\)"):
        expect_image((10,))


# -- add_param: everything after name and shape is a keyword ---------------------------------

class Probe(Layer):
    """A layer that creates one parameter the way a plugin's build does."""

    def build(self, input_shape, rng=None):
        self.input_shape = self.output_shape = tuple(input_shape)
        self.add_param("weight", (2, 3), init="he_uniform", rng=rng, fan_in=3, fan_out=2)
        return self.output_shape


class OldProbe(Probe):
    """Written for paracnn 0.1: add_param with positional arguments."""

    def build(self, input_shape, rng=None):
        self.add_param("weight", (2, 3), "zeros", rng, 3, 2)


def test_add_param_takes_everything_after_name_and_shape_by_keyword():
    assert str(inspect.signature(Layer.add_param)) == (
        "(self, name, shape, *, init, rng, fan_in, fan_out)")
    layer = Probe()
    layer.build((3,), random.Random(0))
    # he_uniform's bound is sqrt(6 / fan_in): fan_in=3 gives sqrt(2)
    assert len(layer.params["weight"]) == 6
    assert all(abs(v) <= math.sqrt(2) for v in layer.params["weight"])
    assert layer.param_shapes == {"weight": (2, 3)} and layer.grads["weight"] == [0.0] * 6


def test_a_positional_add_param_call_names_the_layer_and_the_keyword_call():
    with pytest.raises(TypeError) as info:
        OldProbe().build((3,), random.Random(0))
    assert str(info.value) == (
        "OldProbe.build() calls add_param('weight', (2, 3), ...) with 4 more positional "
        "argument(s); everything after name and shape is a keyword now: "
        "self.add_param('weight', (2, 3), init='zeros', rng=rng, fan_in=3, fan_out=2). "
        "If the layer comes from a plugin, update the plugin")
    assert isinstance(info.value, OutdatedLayerError)  # a ParacnnError: one line, exit 2


def test_a_missing_keyword_is_pythons_own_error_naming_it():
    with pytest.raises(TypeError, match="fan_out"):
        Layer().add_param("weight", (2,), init="zeros", rng=random.Random(0), fan_in=1)


# -- prepare(): the one place derived state is made -------------------------------------------

class Tabled(Layer):
    """Keeps a derived table, as conv2d keeps its gathers."""

    transient = ("_table",)

    def prepare(self):
        self.prepared = getattr(self, "prepared", 0) + 1
        self._table = list(range(self.input_shape[0]))


def test_prepare_runs_after_build_and_again_after_unpickling_only_once_built():
    unbuilt = pickle.loads(pickle.dumps(Tabled()))
    assert not hasattr(unbuilt, "_table")   # nothing to derive from yet
    layer = Tabled()
    layer.build((4,))
    assert layer.prepared == 1 and "_table" not in layer.__getstate__()
    clone = pickle.loads(pickle.dumps(layer))
    assert clone._table == [0, 1, 2, 3] and clone.prepared == 2
