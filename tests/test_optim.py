"""SGD, momentum, Nesterov, weight decay, clipping and schedules against hand computations."""

import math

import pytest

from paracnn.errors import ConfigError
from paracnn.optim import SGD, Schedule, clip_grad_norm, make_optimizer


def test_plain_sgd():
    assert SGD(lr=0.5).step([1.0, -2.0], [0.2, 0.4]) == [0.9, -2.2]


def test_momentum_two_steps():
    opt = SGD(lr=0.1, momentum=0.9)
    w = opt.step([1.0], [1.0])          # buf = 1;          w = 1 - 0.1
    assert w == [0.9] and opt.momentum_buffer == [1.0]
    w = opt.step(w, [0.5])              # buf = 0.9 + 0.5;  w = 0.9 - 0.14
    assert opt.momentum_buffer == [0.9 * 1.0 + 0.5]
    assert w == [0.9 - 0.1 * 1.4]


def test_nesterov():
    opt = SGD(lr=0.1, momentum=0.5, nesterov=True)
    w = opt.step([0.0], [2.0])          # buf = 2;  d = 2 + 0.5*2 = 3
    assert w == [-0.1 * 3.0]
    w = opt.step(w, [1.0])              # buf = 1 + 1 = 2; d = 1 + 0.5*2 = 2
    assert w == [-0.3 - 0.1 * 2.0]


def test_weight_decay_adds_l2_gradient():
    opt = SGD(lr=0.1, weight_decay=0.01)
    assert opt.step([2.0], [1.0]) == [2.0 - 0.1 * (1.0 + 0.01 * 2.0)]


def test_matches_a_reference_loop():
    # the C-level maps compute exactly what the textbook loop does
    w, g1, g2 = [0.3, -1.2, 5.0], [0.1, 0.2, -0.3], [-0.05, 0.4, 0.0]
    opt = SGD(lr=0.07, momentum=0.8, nesterov=True, weight_decay=0.003)
    out = opt.step(opt.step(w, g1), g2)
    ref_w, buf = list(w), [0.0] * 3
    for g in (g1, g2):
        for i in range(3):
            d = g[i] + 0.003 * ref_w[i]
            buf[i] = 0.8 * buf[i] + d
            ref_w[i] = ref_w[i] - 0.07 * (d + 0.8 * buf[i])
    assert out == ref_w


def test_grads_are_not_modified_and_state_round_trips():
    g = [1.0, 2.0]
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step([1.0, 1.0], g)
    assert g == [1.0, 2.0]
    other = SGD(lr=0.1, momentum=0.9, weight_decay=0.1)
    other.load_state_dict(opt.state_dict(), 2)
    assert other.step([1.0, 1.0], g) == opt.step([1.0, 1.0], g)
    with pytest.raises(ValueError, match="the state holds an optimizer momentum_buffer of 1 values"):
        other.load_state_dict({"momentum_buffer": [0.0]}, 2)
    with pytest.raises(ValueError, match="the state holds the state of optimizer adam, not sgd"):
        other.load_state_dict({"type": "adam", "step": 1}, 2)


def test_clip_grad_norm():
    g, norm = clip_grad_norm([3.0, 4.0], 1.0)
    assert norm == 5.0
    assert g == [3.0 * (1.0 / (5.0 + 1e-6)), 4.0 * (1.0 / (5.0 + 1e-6))]
    same, norm = clip_grad_norm([3.0, 4.0], 10.0)
    assert same == [3.0, 4.0] and norm == 5.0


def test_schedules():
    assert Schedule("constant", 0.1, 10)(5, 7) == 0.1
    assert Schedule({"type": "constant"}, 0.1, 10)(5, 7) == 0.1
    step = Schedule({"type": "step", "step_size": 2, "gamma": 0.5}, 0.8, 100)
    assert [step(e, 0) for e in range(5)] == [0.8, 0.8, 0.4, 0.4, 0.2]
    cos = Schedule({"type": "cosine", "min_lr": 0.1}, 1.1, 10)
    assert cos(0, 0) == 1.1
    assert cos(0, 5) == pytest.approx(0.6)
    assert cos(1, 10) == pytest.approx(0.1)
    assert cos(0, 3) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi * 0.3)))


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, adam, adamw, got 'rmsprop'"):
        make_optimizer({"optimizer": "rmsprop"})
    with pytest.raises(ConfigError, match="momentum"):
        make_optimizer({"momentum": 1.5})
    with pytest.raises(ConfigError, match="nesterov needs momentum"):
        SGD(nesterov=True)
    with pytest.raises(ConfigError, match="schedule"):
        Schedule({"type": "exponential"}, 0.1, 1)
    opt = make_optimizer({"optimizer": "sgd", "lr": 0.2, "momentum": 0.5, "nesterov": True})
    assert (opt.lr, opt.momentum, opt.nesterov) == (0.2, 0.5, True)
