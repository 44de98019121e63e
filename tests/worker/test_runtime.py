"""worker/runtime.py: what a worker's registry row says it can annotate."""

from __future__ import annotations

from vace_server.annotators.registry import load_annotators
from vace_server.settings import Settings
from vace_server.worker.runtime import available_controls


def test_without_checkpoints_only_the_weight_free_control_is_reported() -> None:
    described = load_annotators(Settings(device="cpu")).describe()
    assert available_controls(described) == ["scribble"]


def test_loaded_controls_are_reported_by_name_only() -> None:
    described = {
        "depth": {"available": "true", "name": "depth-anything", "backend": "model"},
        "posebody": {"available": "false", "reason": "no pose checkpoint: put … in /srv/pose"},
        "segmentation": {"available": "true", "name": "sam2"},  # not a control
    }
    assert available_controls(described) == ["depth"]
    assert available_controls(None) == []
