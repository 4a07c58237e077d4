"""``paracnn profile``: structure and internal consistency, never timing thresholds."""

import contextlib
import csv
import io
import json
import math
import sys

import pytest
import yaml

from paracnn.cli import main
from paracnn.config import config_from_dict, load_config
from paracnn.errors import ParacnnError
from paracnn.profiling import (amdahl_fit, amdahl_report, amdahl_speedup, cgroup_cpu_quota, karp_flatt,
                               oversubscription_warnings, parse_workers, synthetic_config, usable_cpus,
                               write_plot)
from paracnn.profiling.runner import synthetic_data
from paracnn.profiling.scaling import task_bound
from paracnn.profiling import calibrate, machine, runner
from paracnn.profiling import report as report_module

from .parallel.helpers import REPO, conv_dict

RUN_KEYS = ("workers", "samples_per_second", "speedup", "efficiency", "karp_flatt", "calibration_speedup",
            "calibration_speedup_fixed",
            "relative_efficiency", "total_pss_mb", "worker_uss_mb", "compute_seconds", "broadcast_seconds",
            "reduce_update_seconds", "wait_seconds", "tail_seconds", "step_seconds")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One small CLI run (a tiny conv net, batch 8, workers 1,2, 2 steps) under a 1.5-CPU cgroup quota.

    The conv net uses momentum, Nesterov, weight decay, clipping and a cosine
    schedule, so ``weights_match`` covers every optimiser feature.
    """
    tmp = tmp_path_factory.mktemp("profile")
    config = tmp / "conv.yaml"
    config.write_text(yaml.safe_dump(conv_dict()))
    cgroup = tmp / "cgroup"
    cgroup.mkdir()
    (cgroup / "cpu.max").write_text("150000 100000\n")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setattr(machine, "CGROUP_ROOT", str(cgroup))
        mp.setattr(calibrate, "BURN_ROUNDS", 2)
        mp.setattr(calibrate, "BURN_SECONDS", 0.005)
        status = main(["profile", str(config), "--workers", "2,1", "--steps", "2",
                       "--batch-size", "8", "--synthetic", "--layers", "--json", str(tmp / "p.json"),
                       "--csv", str(tmp / "p.csv")])
    assert status == 0, err.getvalue()
    return {"result": json.loads((tmp / "p.json").read_text()), "csv": tmp / "p.csv",
            "stdout": out.getvalue(), "stderr": err.getvalue(), "tmp": tmp, "config": config}


def test_json_has_serial_runs_amdahl_and_machine(profiled):
    r = profiled["result"]
    assert {"serial", "runs", "amdahl", "machine", "warnings", "layers"} <= set(r)
    assert [run["workers"] for run in r["runs"]] == [1, 2]
    for run in r["runs"]:
        assert set(RUN_KEYS) <= set(run)
        assert len(run["worker_uss_mb"]) == run["workers"]
    m = r["machine"]
    assert m["batch_size"] == 8 and m["steps"] == 2 and m["usable_cpus"] == 1.5
    assert {"python", "sumprod", "start_method", "affinity_cpus", "cgroup_cpu_quota"} <= set(m)
    assert r["synthetic"] and r["dataset"] == "synthetic"
    assert r["serial"]["steps"] == 2 * 2  # interleaved: steps per run x runs


def test_figures_are_consistent(profiled):
    r = profiled["result"]
    t_serial, batch = r["serial"]["step_seconds"], r["machine"]["batch_size"]
    assert math.isclose(r["serial"]["samples_per_second"], batch / t_serial)
    for run in r["runs"]:
        p, s = run["workers"], run["speedup"]
        assert math.isclose(s * run["step_seconds"], t_serial, rel_tol=1e-12)
        assert math.isclose(run["samples_per_second"], batch / run["step_seconds"])
        assert math.isclose(run["paired_speedup"] * run["step_seconds"], run["paired_serial_seconds"])
        assert math.isclose(run["efficiency"], s / p)
        assert math.isclose(run["relative_efficiency"], s / run["calibration_speedup"])
        if r["serial"]["cpu_seconds"]:
            assert math.isclose(run["cpu_work_ratio"], run["cpu_seconds"] / r["serial"]["cpu_seconds"])
        # the idle tail is a part of the wait (both medians over the same steps)
        assert 0.0 <= run["tail_seconds"] <= run["wait_seconds"]
        if p == 1:
            assert run["karp_flatt"] is None and run["calibration_speedup"] == 1.0
            assert run["tail_seconds"] == 0.0  # one worker never waits for another
        else:
            assert math.isclose(run["karp_flatt"], (1 / s - 1 / p) / (1 - 1 / p))
            assert len(run["calibration_seconds"]) == 3 + 2 + 3  # before, one per timed step, after
            assert len(run["calibration_fixed_seconds"]) == 3 + 3  # before and after only
            assert run["calibration_speedup_fixed"] == calibrate.calibration_speedup(
                p, run["calibration_fixed_seconds"])
        assert run["weights_match"], "a worker count changed the weights"
        low, high = run["calibration_range"]
        assert low <= run["calibration_speedup"] <= high
        assert math.isclose(run["calibration_spread"], (high - low) / run["calibration_speedup"])
        flagged = any(f"during the {p}-worker run" in w for w in r["warnings"])
        assert flagged == (run["calibration_spread"] > runner.NOISY_SPREAD)


def test_calibration_spread_is_the_interquartile_range_over_the_median():
    pairs = [(c / 2, 1.0) for c in (2.0, 1.0, 2.0, 1.5, 2.0)]  # p * t1 / tp = c
    assert calibrate.calibration_spread(2, pairs) == (1.5, 2.0, 0.25)
    assert calibrate.calibration_spread(1, pairs) == (1.0, 1.0, 0.0)
    steady = [(1.0, 1.0 + i / 1000) for i in range(9)]
    assert calibrate.calibration_spread(2, steady)[2] < runner.NOISY_SPREAD


def test_a_noisy_host_is_named_with_its_range():
    text = runner.noisy_host_warning({"workers": 2, "calibration_range": [1.21, 1.98],
                                      "calibration_spread": 0.45})
    assert "2-worker run" in text and "1.21x to 1.98x" in text and "45 %" in text


def test_amdahl_section_matches_its_fit(profiled):
    r = profiled["result"]
    a = r["amdahl"]
    assert a["fit_on"] in ("raw", "calibrated")
    assert a["serial_fraction"] == a[a["fit_on"]]["serial_fraction"]
    assert math.isclose(a["raw"]["serial_fraction"], r["runs"][1]["karp_flatt"], abs_tol=1e-9)
    assert a["tasks_per_step"] == 8 == r["machine"]["batch_size"] // r["machine"]["micro_batch"]
    assert a == amdahl_report(r["runs"], a["tasks_per_step"])
    bound = a["raw"]["predicted_speedup_task_bound"]
    f = max(0.0, a["raw"]["serial_fraction"])
    assert bound["16"] == bound["64"] == pytest.approx(amdahl_speedup(f, 8))


def test_csv_has_one_row_per_worker_count(profiled):
    rows = list(csv.DictReader(open(profiled["csv"])))
    assert [row["workers"] for row in rows] == ["1", "2"]
    assert set(RUN_KEYS) <= set(rows[0])
    assert rows[0]["karp_flatt"] == "" and len(rows[1]["worker_uss_mb"].split(";")) == 2
    assert float(rows[1]["speedup"]) == profiled["result"]["runs"][1]["speedup"]


def test_terminal_table_and_warning(profiled):
    out = profiled["stdout"]
    assert "samples/s" in out and "serial" in out and "Amdahl" in out
    assert "bit-identical" in out and "Per-layer times" in out
    assert "warning: 2 workers exceed the 1.5 usable CPUs" in profiled["stderr"]
    assert profiled["result"]["warnings"] and "2 workers" in profiled["result"]["warnings"][0]


def test_layer_table(profiled):
    layers = profiled["result"]["layers"]
    assert [row["type"] for row in layers["layers"]] == ["conv2d", "relu", "maxpool2d", "flatten", "dense"]
    assert math.isclose(sum(row["percent"] for row in layers["layers"]), 100.0)


def test_plot_writes_a_png(profiled):
    pytest.importorskip("matplotlib")
    path = profiled["tmp"] / "p.png"
    write_plot(profiled["result"], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_one_clear_error(profiled, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status = main(["profile", str(profiled["config"]), "--synthetic",
                   "--plot", str(tmp_path / "p.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert 'pip install "paracnn[plot]"' in err[0]
    assert not (tmp_path / "p.png").exists()


# -- the arithmetic ------------------------------------------------------------------

@pytest.mark.parametrize("f", [0.0, 0.003, 0.05, 0.4])
def test_amdahl_fit_recovers_f_from_exact_data(f):
    points = [(p, amdahl_speedup(f, p)) for p in (1, 2, 4, 8, 16)]
    assert amdahl_fit(points) == pytest.approx(f, abs=1e-9)
    # against fractional "effective cores", as the calibrated fit uses
    assert amdahl_fit([(c, amdahl_speedup(f, c)) for c in (1.3, 1.9, 3.6)]) == pytest.approx(f, abs=1e-9)


def test_amdahl_fit_of_one_point_is_karp_flatt_and_needs_one():
    assert amdahl_fit([(2, 1.9)]) == pytest.approx(karp_flatt(1.9, 2), abs=1e-12)
    assert amdahl_fit([(1, 0.9)]) is None and amdahl_fit([]) is None


def test_task_bound():
    assert task_bound(16, 8) == 8 and task_bound(3, 8) == 8 / 3 and task_bound(2, 8) == 2


def test_karp_flatt():
    assert karp_flatt(2.0, 2) == 0.0
    assert karp_flatt(1.0, 4) == pytest.approx(1.0)
    assert karp_flatt(1.0, 1) is None


def test_parse_workers():
    assert parse_workers("4,1,2,2") == [1, 2, 4]
    for bad in ("0,1", "a", "", "-2", "1,,2", "1,2,"):
        with pytest.raises(ParacnnError, match="--workers"):
            parse_workers(bad)


def test_synthetic_config_matches_the_model():
    original = load_config(REPO / "configs/lenet.yaml")
    config = synthetic_config(original, steps=3)
    data = config.data["data"]
    assert data["dataset"] == "synthetic" and data["normalize"] == original.data["data"]["normalize"]
    assert data["synthetic"]["image_shape"] == [1, 28, 28] and data["synthetic"]["num_classes"] == 10
    assert data["synthetic"]["train_size"] == original.data["train"]["batch_size"] * 4
    assert config.build_model().num_params() == original.build_model().num_params()


# -- usable CPUs -----------------------------------------------------------------------

def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == (1.5, str(tmp_path / "cpu.max"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path)[0] is None


def test_cgroup_v1_quota(tmp_path):
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path)[0] == 3.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path)[0] is None


def test_no_cgroup_files_means_affinity(tmp_path):
    assert cgroup_cpu_quota(tmp_path) == (None, None)
    cpus = usable_cpus(tmp_path)
    assert cpus["usable"] == cpus["affinity"] >= 1


def test_usable_is_the_smaller_limit(tmp_path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert usable_cpus(tmp_path)["usable"] == 0.5


def test_oversubscription_warning():
    cpus = {"usable": 2, "affinity": 2, "cgroup_quota": None}
    assert oversubscription_warnings([1, 2], cpus) == []
    (w,) = oversubscription_warnings([1, 2, 4, 8], cpus)
    assert w.startswith("4, 8 workers exceed the 2 usable CPUs")


def test_synthetic_config_of_a_config_dict():
    config = synthetic_config(config_from_dict(conv_dict(batch_size=8)), 1)
    assert config.data["data"]["synthetic"]["train_size"] == 8 * 2
    assert "validation" not in config.data["data"] or not config.data["data"]["validation"]


def test_model_burn_is_the_models_own_training_step(monkeypatch):
    config = config_from_dict(conv_dict())
    burn = calibrate.ModelBurn(config, synthetic_data(config, 2))
    loss = burn(3)
    model = config.build_model()
    expected = 0.0
    for r, (x, y) in enumerate([burn.inputs[0], burn.inputs[1], burn.inputs[0]]):
        expected += model.train_sample(x, y, seed=r)[0]
    assert loss == expected and len(x) == 64 and len(burn.inputs) == 2
    monkeypatch.setattr(calibrate, "BURN_SECONDS", 0.01)
    with calibrate.Calibrator(2, workload=calibrate.ModelBurn(config, synthetic_data(config, 2)),
                              repeats=2) as cal:
        assert cal.rounds >= 1
        pairs = cal.measure(2)
    assert len(pairs) == 2 and all(t1 > 0 and t2 > 0 for t1, t2 in pairs)


def test_parse_workers_names_the_empty_count_and_resolves_auto():
    with pytest.raises(ParacnnError, match="'1,,2' has an empty count"):
        parse_workers("1,,2")
    train_cfg = config_from_dict(conv_dict(batch_size=16, micro_batch=8)).data["train"]
    assert parse_workers("1,auto,4", train_cfg) == [1, 2, 4]  # auto: 2 micro-batches per step


def test_profile_help_describes_the_models_own_calibration(capsys):
    with pytest.raises(SystemExit):
        main(["profile", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the model's own training step" in text
    assert "a pure-CPU burn in 1 and in as many processes" not in text


def test_the_plot_legend_names_the_models_own_calibration(profiled, monkeypatch, tmp_path):
    labels = []

    class Axes:
        def plot(self, *args, label=None, **kwargs):
            labels.append(label)

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    class Figure:
        def __init__(self, *args, **kwargs):
            pass

        def subplots(self, rows, cols):
            return Axes(), Axes()

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(report_module, "require_matplotlib", lambda: Figure)
    write_plot(profiled["result"], tmp_path / "p.png")
    assert "hardware (calibration: the model's own step in p processes)" in labels
    assert not [label for label in labels if label and "burn" in label]


def test_the_fixed_cost_model_fits_a_line_through_the_measured_costs_and_predicts_from_it():
    from paracnn.profiling.scaling import fixed_cost_model, linear_fit

    assert linear_fit([(1, 3.0), (2, 5.0), (4, 9.0)]) == (1.0, 2.0)
    assert linear_fit([(2, 4.0)]) == (4.0, 0.0)
    serial = {"compute_seconds": 0.100, "step_seconds": 0.102}
    # F(p) = step - W / min(c, p): 4, 5, 7 and 11 ms, the line 3 ms + 1 ms per worker
    runs = [{"workers": 1, "calibration_speedup": None, "step_seconds": 0.104},
            {"workers": 2, "calibration_speedup": 2.0, "step_seconds": 0.055},
            {"workers": 4, "calibration_speedup": 2.0, "step_seconds": 0.057},
            {"workers": 8, "calibration_speedup": 2.0, "step_seconds": 0.061}]
    model = fixed_cost_model(serial, runs, tasks=8)
    assert model["measured"] == pytest.approx({"1": 0.004, "2": 0.005, "4": 0.007, "8": 0.011})
    f0, f1 = model["per_step_seconds"], model["per_worker_seconds"]
    assert f0 == pytest.approx(0.003) and f1 == pytest.approx(0.001)
    assert model["predicted_speedup"]["8"] == pytest.approx(0.102 / (0.100 / 8 + 0.003 + 0.008))
    # beyond 8 micro-batches per step, the extra workers add fixed cost and no compute
    assert model["predicted_speedup"]["16"] == pytest.approx(0.102 / (0.100 / 8 + 0.003 + 0.016))
    # a fixed cost that falls with more workers stays, past 8, at the line's value at 8
    falling = [dict(r) for r in runs]
    for r, step in zip(falling, (0.109, 0.057, 0.055, 0.054)):  # F: 9, 7, 5 and 4 ms
        r["step_seconds"] = step
    flat = fixed_cost_model(serial, falling, tasks=8)
    assert flat["per_worker_seconds"] < 0
    f8 = flat["per_step_seconds"] + 8 * flat["per_worker_seconds"]
    assert flat["predicted_speedup"]["8"] == pytest.approx(0.102 / (0.100 / 8 + f8))
    assert flat["predicted_speedup"]["64"] == pytest.approx(flat["predicted_speedup"]["8"])
    # on 2 CPUs the runs at 4 and 8 workers compute on 2: held to the 2-worker calibration
    runs[2]["calibration_speedup"] = runs[3]["calibration_speedup"] = 1.5
    assert fixed_cost_model(serial, runs, tasks=8, cores=2)["measured"] == pytest.approx(
        {"1": 0.004, "2": 0.005, "4": 0.007, "8": 0.011})


def test_the_profile_reports_the_fixed_cost_and_where_it_goes(profiled):
    r = profiled["result"]
    for run in [r["serial"]] + r["runs"]:
        assert run["fixed_seconds"] == pytest.approx(run["step_seconds"] - run["compute_seconds"], abs=0.05)
        assert run["fixed_share"] == pytest.approx(run["fixed_seconds"] / r["serial"]["step_seconds"])
        assert {"result_wait_seconds", "reduce_seconds", "update_seconds", "shm_io_seconds"} <= set(run)
    assert set(r["fixed_cost"]["measured"]) == {"1", "2"}
    assert "Fixed cost per step" in profiled["stdout"] and "Fixed-cost model" in profiled["stdout"]
