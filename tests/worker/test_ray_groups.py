"""The placement a Ray worker group reserves (the run itself: tests/e2e/test_ray_workers.py)."""

from __future__ import annotations

import pytest

from vace_server.worker.ray_actors import Placement, _actor_args
from vace_server.worker.ray_groups import group_placement, placement_group_name


def test_a_group_reserves_one_bundle_of_all_its_gpus_on_one_node() -> None:
    bundles, strategy = group_placement(Placement(replicas=2, gpus_per_task=4, cpus_per_worker=2))
    assert bundles == [{"GPU": 4.0, "CPU": 8.0}]  # N GPUs, a CPU share per rank process
    assert strategy == "STRICT_PACK"  # the ranks meet on loopback: one node
    assert placement_group_name("vace-worker-1") == "vace-worker-1-gpus"


def test_a_plain_placement_is_not_a_group() -> None:
    with pytest.raises(ValueError, match="at least 2 GPUs"):
        group_placement(Placement(replicas=1))
    # The actor's constructor arguments: a group's carries its size.
    assert _actor_args(Placement(replicas=1), "{}", "a") == ("{}", "a")
    assert _actor_args(Placement(replicas=1, gpus_per_task=2), "{}", "a") == ("{}", "a", 2)
