"""What the routes share: built once at start-up, reached through `request.app.state.ctx`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from fastapi import Request

from vace_server.api.accounts import Caller, KeyRing
from vace_server.api.metrics import Metrics
from vace_server.api.ratelimit import RateLimiter
from vace_server.api.summary import KeySource
from vace_server.api.wire_names import DEFAULT_SERVED, ServedNames
from vace_server.settings import Settings
from vace_server.storage.base import Storage
from vace_server.tasks.store import TaskStore
from vace_server.tasks.workers import WorkerRegistry

if TYPE_CHECKING:
    from vace_server.worker.supervisor import WorkerSupervisor


@dataclass
class AppContext:
    settings: Settings
    store: TaskStore
    storage: Storage
    keys: KeyRing
    zone: ZoneInfo
    limiter: RateLimiter
    workers: WorkerRegistry
    metrics: Metrics
    supervisor: WorkerSupervisor | None = None
    served: ServedNames = DEFAULT_SERVED  # the model names VACE_MODELS serves
    _per_model: dict[str, Settings] = field(default_factory=dict, repr=False)
    key_source: KeySource | None = None  # for the start-up summary (`api.summary`)

    def settings_for(self, model_name: str) -> Settings:
        """The settings tasks of `model_name` run under: its VACE_MODELS entry's engine
        settings over the deployment's (recorded with each task), or ours without a registry."""
        if not self.settings.engine.served_models:
            return self.settings
        own = self.served.upload_model(model_name)
        if own not in self._per_model:
            served = self.settings.replace(served_model=own)
            self._per_model[own] = served.for_served_model()
        return self._per_model[own]


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context


def request_id(request: Request) -> str:
    rid: str = request.state.request_id
    return rid


def caller(request: Request) -> Caller:
    """Authenticates the request. Raises InvalidApiKey."""
    return ctx(request).keys.authenticate(request.headers.get("authorization"))
