import math
import random
import statistics

import pytest

from paracnn.errors import ConfigError
from paracnn.init import get_initializer


def _draw(spec, n=20000, fan_in=50, fan_out=20):
    return get_initializer(spec)(n, fan_in, fan_out, random.Random(0))


def test_uniform_bounds_like_seed_000():
    v = _draw({"type": "uniform", "low": -0.1, "high": 0.1})
    assert -0.1 <= min(v) < -0.09 and 0.09 < max(v) <= 0.1


@pytest.mark.parametrize("name,limit", [("he_uniform", math.sqrt(6 / 50)),
                                        ("xavier_uniform", math.sqrt(6 / 70))])
def test_uniform_limits(name, limit):
    v = _draw(name)
    assert max(abs(x) for x in v) <= limit
    assert max(abs(x) for x in v) > 0.99 * limit


@pytest.mark.parametrize("name,std", [("he_normal", math.sqrt(2 / 50)),
                                      ("xavier_normal", math.sqrt(2 / 70))])
def test_normal_std(name, std):
    assert statistics.pstdev(_draw(name)) == pytest.approx(std, rel=0.03)


def test_constant_and_zeros():
    assert _draw({"type": "constant", "value": 0.25}, n=3) == [0.25] * 3
    assert _draw("zeros", n=2) == [0.0, 0.0]


def test_same_seed_same_values():
    assert _draw("he_normal", n=10) == _draw("he_normal", n=10)


@pytest.mark.parametrize("spec,match", [
    ("he_unifrom", "did you mean 'he_uniform'"),
    ({"low": 1}, "needs a 'type:'"),
    ({"type": "uniform", "low": 1, "high": 0}, "low < high"),
    ({"type": "uniform", "lo": 1}, "takes low, high"),
    ({"type": "normal", "std": -1}, "std must be > 0"),
    (3, "must be an initialiser name"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        get_initializer(spec)
