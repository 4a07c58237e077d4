"""Config loading: positions, defaults, the schema, overrides and YAML safety."""

import pickle

import pytest

from paracnn.config import (DATA_DEFAULTS, TRAIN_DEFAULTS, Config, config_from_dict, load_config,
                            parse_override, parse_yaml)
from paracnn.errors import ConfigError, ShapeError

from .conftest import SMALL_CONFIG
from .faults.bombs import merge_bomb

# Line numbers below refer to this text.
BASE = SMALL_CONFIG


@pytest.fixture
def write(tmp_path):
    def write(text, name="c.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def test_defaults_are_filled_everywhere(write):
    c = load_config(write(BASE))
    assert isinstance(c, Config)
    assert c.data["train"] == {**TRAIN_DEFAULTS, "lr": 0.05, "momentum": 0.9,
                               "schedule": {"type": "constant"}}
    assert set(c.data["data"]) >= set(DATA_DEFAULTS)
    assert c.data["data"]["dataset"] == "mnist"
    # Layers list every constructor argument, in the constructor's order.
    conv = c.data["model"]["layers"][0]
    assert list(conv)[:3] == ["type", "filters", "kernel_size"]
    assert conv["stride"] == 1 and conv["padding"] == "valid" and conv["bias"] is True
    assert c.data["model"]["layers"][1] == {"type": "relu"}
    assert (c.image_shape, c.num_classes) == ((1, 28, 28), 10)


def test_where_points_at_keys_and_items(write):
    c = load_config(write(BASE))
    name = str(c.path)
    assert c.where(("model", "layers", 0, "filters")) == f"{name}:5:7"
    assert c.where(("model", "layers", 3)) == f"{name}:10:7"
    assert c.where(("model", "input_shape", 2)) == f"{name}:2:24"
    assert c.where(("train", "lr")) == f"{name}:14:3"
    # A missing key falls back to the deepest node present.
    assert c.where(("model", "layers", 4, "bias")) == f"{name}:11:7"
    assert c.where(("data", "dataset")) == f"{name}:1:1"


def test_build_model_and_resolved_yaml_round_trip(write, tmp_path):
    c = load_config(write(BASE))
    model = c.build_model()
    assert model.output_shape == (10,)
    assert model.num_params() == (4 * 25 + 4) + (4 * 12 * 12 * 10 + 10)
    again = load_config(write(c.to_yaml(), "resolved.yaml"))
    assert again.data == c.data
    assert config_from_dict(c.data).data == c.data


def test_build_model_seed_controls_weights(write):
    c = load_config(write(BASE))
    assert list(c.build_model().get_weights()) == list(c.build_model(seed=0).get_weights())
    assert list(c.build_model(seed=1).get_weights()) != list(c.build_model(seed=0).get_weights())


def test_shape_errors_point_at_the_layer(write):
    c = load_config(write(BASE.replace("    - type: flatten\n", "")))
    with pytest.raises(ShapeError) as e:
        c.build_model()
    assert e.value.where == f"{c.path}:10:7"
    assert "layers[3]" in e.value.message
    assert "expects a flat input but gets (4, 12, 12); add a flatten layer before it" in e.value.message


def test_output_classes_must_match_the_dataset(write):
    c = load_config(write(BASE.replace("units: 10", "units: 7")))
    with pytest.raises(ConfigError) as e:
        c.build_model()
    assert e.value.where == f"{c.path}:12:7"
    assert "output is (7,) but the mnist dataset has 10 classes" in e.value.message


def test_flat_input_shape_matches_images(write):
    text = BASE.replace("[1, 28, 28]", "[784]").replace(
        "    - type: conv2d\n      filters: 4\n      kernel_size: 5\n    - type: relu\n"
        "    - type: maxpool2d\n      kernel_size: 2\n", "")
    assert load_config(write(text)).build_model().output_shape == (10,)


def test_synthetic_dataset_shapes(write):
    text = BASE.replace("[1, 28, 28]", "[1, 12, 12]").replace("kernel_size: 5", "kernel_size: 3") + \
        "data:\n  dataset: synthetic\n  synthetic: {num_classes: 10}\n"
    c = load_config(write(text))
    assert c.data["data"]["synthetic"] == {**DATA_DEFAULTS["synthetic"], "num_classes": 10}
    assert c.image_shape == (1, 12, 12)
    with pytest.raises(ConfigError, match=r"input_shape \(1, 12, 12\) does not match the synthetic "
                                          r"images \(1, 8, 8\)") as e:
        load_config(write(text + "  # \n"), overrides=["data.synthetic.image_shape=[1, 8, 8]"])
    assert e.value.where.endswith(":2:3")


@pytest.mark.parametrize("spec, resolved", [
    ("constant", {"type": "constant"}),
    ("cosine", {"type": "cosine", "min_lr": 0.0}),
    ("step", {"type": "step", "step_size": 1, "gamma": 0.1}),
    ("{type: cosine, min_lr: 0.001}", {"type": "cosine", "min_lr": 0.001}),
    ("{type: step, step_size: 2}", {"type": "step", "step_size": 2, "gamma": 0.1}),
    ("{type: step, step_size: 1, gamma: 0.5}", {"type": "step", "step_size": 1, "gamma": 0.5}),
])
def test_schedules_resolve_to_mappings(write, spec, resolved):
    c = load_config(write(BASE + f"  schedule: {spec}\n"))
    assert c.data["train"]["schedule"] == resolved


@pytest.mark.parametrize("spec, message", [
    ("{type: step, gamma: 0}", "train.schedule.gamma must be > 0.0"),
    ("{type: step, step_size: 0}", "train.schedule.step_size must be >= 1"),
    ("{type: cosine, min_lr: 0.5}", "min_lr must be below train.lr"),
    ("{type: cosine, step_size: 3}", "unknown key 'step_size' in a cosine schedule"),
    ("{type: expo}", "train.schedule.type must be one of constant, step, cosine"),
    ("[1, 2]", "train.schedule must be constant"),
])
def test_bad_schedules(write, spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(write(BASE + f"  schedule: {spec}\n"))
    assert e.value.where.split(":")[1] == "16"


# -- overrides -----------------------------------------------------------------------

def test_overrides_are_yaml_values_on_dotted_paths(write):
    c = load_config(write(BASE), overrides=[
        "train.lr=0.01", "train.epochs=3", "model.layers.0.filters=6", "model.layers[4].units=10",
        "data.train_limit=null", "data.dataset=fashion-mnist", "train.schedule={type: cosine}",
        "data.synthetic.num_classes=4"])
    t = c.data["train"]
    assert (t["lr"], t["epochs"], t["schedule"]) == (0.01, 3, {"type": "cosine", "min_lr": 0.0})
    assert c.data["model"]["layers"][0]["filters"] == 6
    assert c.data["data"]["dataset"] == "fashion-mnist"
    assert c.data["data"]["synthetic"]["num_classes"] == 4


def test_override_errors_cite_the_override(write):
    path = write(BASE)
    cases = {
        "train.lrr=0.1": "--set train.lrr=0.1: unknown key 'lrr' in train; did you mean 'lr'?",
        "tran.lr=0.1": "--set tran.lr=0.1: unknown key 'tran' in the config; did you mean 'train'?",
        "train.lr=abc": "--set train.lr=abc: train.lr must be a number, got 'abc'",
        "train.lr.x=1": "--set train.lr.x=1: train.lr is 0.05, which has no key 'x'",
        "model.layers.9.units=3": "--set model.layers.9.units=3: model.layers has 5 items, so index 9",
        "model.layers.first=3": "--set model.layers.first=3: model.layers is a list; index it with a number",
        "model.layers.0.filterz=3": "--set model.layers.0.filterz=3: unknown key 'filterz' in layers[0] "
                                    "conv2d; did you mean 'filters'?",
        "train.lr": "--set train.lr: expected KEY=VALUE",
        "train.lr=[1,": "--set train.lr=[1,: the value is not valid YAML",
    }
    for override, expected in cases.items():
        with pytest.raises(ConfigError) as e:
            load_config(path, overrides=[override])
        assert str(e.value).startswith(expected), (override, str(e.value))


def test_override_inside_a_layer_is_mentioned_in_shape_errors(write):
    c = load_config(write(BASE), overrides=["model.layers.0.kernel_size=40"])
    with pytest.raises(ShapeError) as e:
        c.build_model()
    assert e.value.where == f"{c.path}:4:7"
    assert "kernel_size 40x40 is larger than" in e.value.message
    assert "(after --set model.layers.0.kernel_size=40)" in e.value.message


def test_parse_override_paths():
    assert parse_override("model.layers[2].init={type: uniform}").path == ("model", "layers", 2, "init")
    assert parse_override("a.b=").value is None
    assert parse_override("train.lr=1e-3").value == 1e-3  # YAML 1.1 alone reads a string
    assert parse_override("train.lr=1").value == 1 and parse_override("x=1_000").value == 1000
    assert parse_override("train.lr=0.001").value == 0.001


# -- YAML safety and strictness ----------------------------------------------------------

def test_python_tags_are_refused(write, tmp_path):
    marker = tmp_path / "pwned"
    text = BASE + f'data: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(ConfigError, match="tag 'tag:yaml.org,2002:python/object/apply:os.system' is "
                                          "not allowed") as e:
        load_config(write(text))
    assert e.value.where.endswith(":16:7")
    assert not marker.exists()
    with pytest.raises(ConfigError, match="configs use plain YAML values only"):
        load_config(write(BASE + "  seed: !!python/name:os.system\n"))


def test_alias_bombs_are_refused_quickly(monkeypatch):
    from paracnn.config import yamlpos

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    # NOTE: "quickly" counted in values built, not in seconds, which a busy host
    # stretches: the 9**9 values must be refused at the first one past the limit.
    built, build = [0], yamlpos._Builder.build

    def counting_build(self, node, path):
        built[0] += 1
        assert built[0] <= 2 * yamlpos.MAX_NODES, "the alias bomb is being expanded"
        return build(self, node, path)

    monkeypatch.setattr(yamlpos._Builder, "build", counting_build)
    with pytest.raises(ConfigError, match="expands to more than 100000 values through aliases"):
        parse_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert built[0] == yamlpos.MAX_NODES + 1 == 100_001


def test_merge_keys_count_against_the_value_limit(monkeypatch):
    from paracnn.config import yamlpos

    # NOTE: counted in the pairs the merges list, not in seconds (it used to take hours).
    listed, pairs = [0], yamlpos._Builder.pairs

    def counting_pairs(self, node):
        out = pairs(self, node)
        listed[0] += len(out)
        assert listed[0] <= 4 * yamlpos.MAX_NODES, "the merge keys are being expanded"
        return out

    monkeypatch.setattr(yamlpos._Builder, "pairs", counting_pairs)
    with pytest.raises(ConfigError, match=r"^bomb.yaml:1:10: the config expands to more than 100000 "
                                          r"values through aliases \(&anchor/\*alias\) or merge keys"):
        parse_yaml(merge_bomb(), "bomb.yaml")


@pytest.mark.parametrize("digits", [101, 5000, 100_000])
def test_an_integer_of_too_many_digits_is_one_config_error(write, digits):
    with pytest.raises(ConfigError, match=rf":16:9: an integer of {digits:,} digits; configs take at most 100$"):
        load_config(write(BASE + "  seed: 1" + "0" * (digits - 1) + "\n"))


def test_a_config_nested_deeper_than_yaml_allows_is_refused_when_it_comes_as_data():
    data = {"train": {"lr": 0.1}}
    deep = data["train"]
    for _ in range(2000):  # deeper than Python's recursion limit
        deep["x"] = {}
        deep = deep["x"]
    with pytest.raises(ConfigError, match=r"^ckpt.json: the config is nested more than 50 levels deep$"):
        config_from_dict(data, name="ckpt.json")


def test_small_aliases_and_merge_keys_work(write):
    text = BASE.replace("      filters: 4\n", "      filters: 4\n      init: &u {type: uniform, low: -0.1, high: 0.1}\n")
    text = text.replace("      units: 10\n", "      units: 10\n      init: *u\n")
    c = load_config(write(text))
    assert c.data["model"]["layers"][4]["init"] == {"type": "uniform", "low": -0.1, "high": 0.1}
    data, _ = parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert data["other"] == {"x": 1, "y": 3}


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="an alias refers to the mapping or list that contains it"):
        parse_yaml("a: &a [1, *a]\n", "r.yaml")


def test_duplicate_keys_are_refused(write):
    with pytest.raises(ConfigError, match=r"duplicate key 'lr' \(first given on line 14\)") as e:
        load_config(write(BASE + "  lr: 0.1\n"))
    assert e.value.where.endswith(":16:3")


def test_non_string_keys_are_refused():
    with pytest.raises(ConfigError, match="keys must be names, got True; quote it"):
        parse_yaml("on: 1\n", "k.yaml")


def test_several_documents_are_refused(write):
    with pytest.raises(ConfigError, match="expected a single document") as e:
        load_config(write(BASE + "---\nmodel: {}\n"))
    assert e.value.where.endswith(":16:1")


def test_missing_file_and_dict_configs():
    with pytest.raises(ConfigError, match="cannot read config 'nope.yaml'") as e:
        load_config("nope.yaml")
    assert e.value.where is None
    with pytest.raises(ConfigError) as e:
        config_from_dict({"model": {"input_shape": [1, 28, 28], "layers": []}}, name="ckpt.json")
    assert str(e.value).startswith("ckpt.json: model.layers must be a non-empty list")


def test_config_pickles(write):
    c = load_config(write(BASE))
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.data == c.data and c2.where(("train", "lr")) == c.where(("train", "lr"))
    assert c2.build_model().output_shape == (10,)


@pytest.mark.parametrize("line, message", [
    ("  nesterov: true\n  momentum: 0\n", "train.nesterov needs momentum > 0"),
    ("  workers: 5000\n", "train.workers must be <= 1024"),
    ("  start_method: thread\n", "train.start_method must be one of fork, spawn, forkserver"),
    ("  clip_grad_norm: 0\n", "train.clip_grad_norm must be > 0"),
    ("  batch_size: 2.5\n", "train.batch_size must be an integer"),
    ("  optimizer: rmsprop\n", "train.optimizer must be one of sgd, adam, adamw"),
    ("  seed: -1\n", "train.seed must be >= 0"),
])
def test_train_values(write, line, message):
    text = BASE.replace("  momentum: 0.9\n", "")
    with pytest.raises(ConfigError, match=message):
        load_config(write(text + line))


@pytest.mark.parametrize("line, message", [
    ("  dataset: mnits\n", "data.dataset must be one of mnist, fashion-mnist, synthetic, got 'mnits'; "
                           "did you mean 'mnist'?"),
    ("  mirror: ftp://example.com/\n", "data.mirror must be an http"),
    ("  std: 0\n", "data.std must be > 0"),
    ("  train_limit: 0\n", "data.train_limit must be >= 1"),
    ("  dir: 3\n", "data.dir must be a non-empty string"),
    ("  synthetic: {num_classes: 1}\n", "data.synthetic.num_classes must be >= 2"),
    ("  synthetic: {image_shape: [1, 12]}\n", "data.synthetic.image_shape must be a list of 1 or 3"),
    ("  synthetic: {clases: 3}\n", "unknown key 'clases' in data.synthetic"),
])
def test_data_values(write, line, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(BASE + "data:\n" + line))
