"""``paracnn profile --backend ray``: the same result keys as a local profile, calibration in actors."""

import pytest

from paracnn.config import config_from_dict
from paracnn.profiling import calibrate, profile

from ..parallel.helpers import conv_dict, quiet

ray = pytest.importorskip("ray")


def shape(result):
    """The keys of a profile result, level by level (the Amdahl fits' values vary with the data)."""
    return {"top": set(result), "serial": set(result["serial"]), "machine": set(result["machine"]),
            "runs": [set(run) for run in result["runs"]], "amdahl": set(result["amdahl"])}


def test_a_ray_profile_has_the_keys_of_a_local_one_and_matching_weights(ray_cluster, monkeypatch):
    cluster, _ = ray_cluster
    monkeypatch.setattr(calibrate, "BURN_ROUNDS", 2)
    monkeypatch.setattr(calibrate, "BURN_SECONDS", 0.005)
    results = {}
    for backend in ("local", "ray"):
        config = config_from_dict(conv_dict(batch_size=8, backend=backend, ray_address=cluster.address))
        results[backend] = profile(config, [1, 2], steps=1, synthetic=True, log=quiet)
    assert shape(results["ray"]) == shape(results["local"])
    assert results["ray"]["machine"]["backend"] == "ray"
    assert all(run["weights_match"] for run in results["ray"]["runs"])
    assert all(run["calibration_seconds"] for run in results["ray"]["runs"] if run["workers"] > 1)
