"""A worker serves one model: `serve` starts workers per served model (each child told its
model), a worker's loop claims only its model's tasks, and its runtime runs with its
model's settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.worker.test_loop import SPEC, FakePipeline, _fake_loop, _task
from vace_server.settings import Settings, from_worker_payload
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore
from vace_server.worker.runtime import WorkerRuntime, WorkerStartupError
from vace_server.worker.supervisor import WorkerSupervisor, served_plan

REGISTRY = {
    "big": {"model": "tiny-a14b", "aliases": ["big-alias"], "workers": 2},
    "small": {"settings": {"guidance_scale": 1.0}},
}


def _registry_settings(**more: object) -> Settings:
    return Settings(model="tiny", models=json.dumps(REGISTRY), **more)  # type: ignore[arg-type]


def test_the_plan_is_per_served_model() -> None:
    assert served_plan(Settings(model="tiny"), 3) == [None, None, None]  # today's: one model
    assert served_plan(_registry_settings(), 1) == ["big", "big", "small"]
    assert served_plan(_registry_settings(), 0) == ["big", "big"]  # small: VACE_WORKERS=0


class _FakeProcess:
    """multiprocessing's Process, recording what it would start."""

    started: ClassVar[list[tuple[Any, ...]]] = []

    def __init__(self, *, target: Any, args: tuple[Any, ...], name: str, daemon: bool) -> None:
        self.args, self.pid = args, 4242

    def start(self) -> None:
        _FakeProcess.started.append(self.args)


def test_each_child_is_told_its_served_model(store: TaskStore) -> None:
    supervisor = WorkerSupervisor(_registry_settings(), store, 1)
    supervisor._ctx = SimpleNamespace(Process=_FakeProcess)  # type: ignore[assignment]
    _FakeProcess.started.clear()
    for slot in supervisor.pool.slots:
        slot.worker_id = f"w-{slot.index}"
        supervisor._spawn(slot)
    served = [from_worker_payload(args[0]).engine.served_model for args in _FakeProcess.started]
    assert served == ["big", "big", "small"]
    assert [e["served_model"] for e in supervisor.snapshot()] == ["big", "big", "small"]
    default = WorkerSupervisor(Settings(model="tiny"), store, 1)
    assert ["served_model" in e for e in default.snapshot()] == [False]  # as before the registry


def test_a_loop_claims_only_its_models_tasks(store: TaskStore, tmp_path: Path) -> None:
    ids = {}
    for name in ("small", "big-alias", "big"):
        spec = dataclasses.replace(SPEC, model_name=name)
        ids[name] = store.create(spec, account="a", api_key_id="k", request_id="r").id
    loop, _storage = _fake_loop(store, tmp_path, FakePipeline())
    loop.settings = _registry_settings(served_model="big").for_served_model()
    assert loop.run_once() and loop.run_once()
    assert not loop.run_once()  # the small task is not its model's
    assert _task(store, ids["big-alias"]).status is TaskStatus.SUCCEEDED
    assert _task(store, ids["big"]).status is TaskStatus.SUCCEEDED
    assert _task(store, ids["small"]).status is TaskStatus.PENDING


def test_the_runtime_runs_with_its_models_settings() -> None:
    runtime = WorkerRuntime(_registry_settings(served_model="small"), "w-1")
    engine = runtime.settings.engine
    assert (engine.served_model, engine.model, engine.guidance_scale) == ("small", "tiny", 1.0)
    with pytest.raises(WorkerStartupError, match="set VACE_SERVED_MODEL"):
        WorkerRuntime(_registry_settings(), "w-2")  # several models: which one?
