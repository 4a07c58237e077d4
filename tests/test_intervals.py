"""``train.checkpoint_every`` and ``train.log_every``: what the schema accepts, and when it is due."""

import pytest

from paracnn.config import load_config
from paracnn.errors import ConfigError
from paracnn.intervals import Every

from .conftest import SMALL_CONFIG


@pytest.mark.parametrize("value, resolved", [("90s", "90s"), ("5m", "5m"), ("1.5h", "1.5h"),
                                             ("500", 500), ("0", 0), ("null", None)])
def test_checkpoint_every_takes_steps_or_a_duration(tmp_path, value, resolved):
    path = tmp_path / "c.yaml"
    path.write_text(SMALL_CONFIG + f"  checkpoint_every: {value}\n")
    assert load_config(path).data["train"]["checkpoint_every"] == resolved


def test_the_defaults_checkpoint_every_few_minutes_and_log_a_few_dozen_rows_per_epoch(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(SMALL_CONFIG)
    train = load_config(path).data["train"]
    assert train["checkpoint_every"] == "5m" and train["log_every"] is None


@pytest.mark.parametrize("value", ["5x", "-1", "true", "1.5", "m"])
def test_a_bad_checkpoint_every_is_one_line_at_its_line(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text(SMALL_CONFIG + f"  checkpoint_every: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:16:3: ")
    assert "train.checkpoint_every must be a number of steps (e.g. 500), a duration (e.g. 90s, 5m" \
        in str(info.value)


@pytest.mark.parametrize("value", ["0", "-3", "2.5"])
def test_log_every_is_a_positive_whole_number_or_null(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text(SMALL_CONFIG + f"  log_every: {value}\n")
    with pytest.raises(ConfigError, match="train.log_every"):
        load_config(path)


def test_every_n_steps_counts_the_global_step():
    every = Every(3)
    assert [s for s in range(1, 10) if every.due(s)] == [3, 6, 9]


def test_every_duration_is_due_once_that_long_has_passed(monkeypatch):
    import paracnn.intervals as intervals

    now = [1000.0]
    monkeypatch.setattr(intervals.time, "monotonic", lambda: now[0])
    every = Every("90s")
    assert every.seconds == 90.0 and not every.due(1)
    now[0] += 89.0
    assert not every.due(2)
    now[0] += 1.0
    assert every.due(3)
    every.reset()
    assert not every.due(4)
    assert Every("2m").seconds == 120.0 and Every("1h").seconds == 3600.0


@pytest.mark.parametrize("value", [0, None, "0s"])
def test_zero_or_null_is_never(value):
    every = Every(value)
    assert not every.enabled and not any(every.due(s) for s in range(1, 100))
