"""Prometheus metrics. Queue depth and live workers are read from the database at scrape
time; durations, step times and failures are observed once per finished task by a sweep over
tasks that ended since the previous scrape (so workers on any machine are counted without
talking to them). `vace_http_responses_total{code}` counts this process's own answers (the
API's 5xx rate for alerting). Counters start at zero when this API process starts; with several API
replicas, scrape one of them (or aggregate with `max`)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vace_server.api.wire_names import ServedNames
from vace_server.clock import wall_clock_ms
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore
from vace_server.tasks.workers import WorkerRegistry

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80)
# Stages run from milliseconds (a store on local disk) to many minutes (a 14B denoise).
STAGE_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
LATE_COMMIT_MS = 10_000  # how far back each sweep looks again for late-committed tasks


class _LiveState(Collector):
    def __init__(
        self,
        store: TaskStore,
        registry: WorkerRegistry,
        alive_ms: int,
        served: ServedNames | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.alive_ms = alive_ms
        self.served = served  # with a registry (VACE_MODELS): the per-model gauges too

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.store.count_by_status()
        tasks = GaugeMetricFamily("vace_tasks", "Tasks in the store by status", labels=["status"])
        for status in TaskStatus:
            if status is not TaskStatus.UNKNOWN:
                tasks.add_metric([status.value], counts.get(status.value, 0))
        yield tasks
        alive = self.registry.alive(self.alive_ms)
        yield GaugeMetricFamily(
            "vace_workers_alive", "Workers that beat into the registry recently", value=len(alive)
        )
        if self.served is not None:
            yield from self._per_model(self.served, alive)

    def _per_model(
        self, served: ServedNames, alive: list[dict[str, object]]
    ) -> Iterator[GaugeMetricFamily]:
        """Tasks by status and live workers for each served model (aliases summed in)."""
        models = served.models()
        counts = {(m, st.value): 0 for m in models for st in TaskStatus if st.value != "UNKNOWN"}
        for (name, status), n in self.store.count_by_model_status().items():
            key = (served.upload_model(name), status)
            if key in counts:
                counts[key] += n
        tasks = GaugeMetricFamily(
            "vace_model_tasks", "Tasks in the store by served model and status",
            labels=["model", "status"],
        )  # fmt: skip
        for (model, status), n in sorted(counts.items()):
            tasks.add_metric([model, status], n)
        yield tasks
        workers = GaugeMetricFamily(
            "vace_model_workers_alive", "Live workers by served model", labels=["model"]
        )
        for model in models:
            workers.add_metric([model], sum(1 for w in alive if w.get("served_model") == model))
        yield workers


class Metrics:
    def __init__(
        self,
        store: TaskStore,
        registry: WorkerRegistry,
        *,
        alive_ms: int,
        served: ServedNames | None = None,
    ) -> None:
        """`served`: the registry's model names (VACE_MODELS), for the per-model gauges;
        None (one model) leaves them out."""
        self.store = store
        self.registry = CollectorRegistry()
        self.registry.register(_LiveState(store, registry, alive_ms, served))
        self.duration = Histogram(
            "vace_task_duration_seconds",
            "Submission to end of finished tasks",
            ["function", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "vace_task_run_seconds",
            "Start of execution to end of finished tasks",
            ["function", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.step_time = Histogram(
            "vace_denoising_step_seconds",
            "Mean denoising step time of each succeeded task",
            ["function"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.stage_time = Histogram(
            "vace_stage_seconds",
            "Wall time of each serving stage of succeeded tasks (fetch ... store)",
            ["function", "model", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "vace_task_failures",
            "Failed tasks by error code",
            ["function", "code"],
            registry=self.registry,
        )
        # By status code only: the path would make one series per task id.
        self.responses = Counter(
            "vace_http_responses",
            "HTTP responses of this API process by status code",
            ["code"],
            registry=self.registry,
        )
        self._watermark = wall_clock_ms()
        self._seen: deque[tuple[int, str]] = deque()
        self._seen_ids: set[str] = set()
        self._lock = threading.Lock()

    def count_response(self, status: int) -> None:
        """One HTTP response sent with `status` (called by the request-context middleware)."""
        self.responses.labels(str(status)).inc()

    def render(self) -> bytes:
        """Sweeps newly finished tasks, then renders the text exposition format."""
        with self._lock:
            self._sweep()
        return generate_latest(self.registry)

    def _sweep(self) -> None:
        since = self._watermark - LATE_COMMIT_MS
        for task in self.store.ended_since(since):
            if task.id in self._seen_ids or task.ended_ms is None:
                continue
            self._observe(task)
            self._seen.append((task.ended_ms, task.id))
            self._seen_ids.add(task.id)
            self._watermark = max(self._watermark, task.ended_ms)
        while self._seen and self._seen[0][0] < self._watermark - 2 * LATE_COMMIT_MS:
            self._seen_ids.discard(self._seen.popleft()[1])

    def _observe(self, task: TaskRecord) -> None:
        assert task.ended_ms is not None
        labels = (task.function, task.status.value)
        self.duration.labels(*labels).observe((task.ended_ms - task.created_ms) / 1000)
        if task.started_ms is not None:
            self.run_time.labels(*labels).observe((task.ended_ms - task.started_ms) / 1000)
        if task.status is TaskStatus.FAILED:
            self.failures.labels(task.function, task.error_code or "InternalError").inc()
        step = (task.effective or {}).get("mean_step_seconds")
        if task.status is TaskStatus.SUCCEEDED and isinstance(step, int | float):
            self.step_time.labels(task.function).observe(float(step))
        if task.status is TaskStatus.SUCCEEDED:
            self._observe_stages(task)

    def _observe_stages(self, task: TaskRecord) -> None:
        effective = task.effective or {}
        stage_ms = effective.get("stage_ms")
        if not isinstance(stage_ms, dict):
            return  # finished before stage timings existed
        for stage, ms in stage_ms.items():  # model: the requested (DashScope) model name
            if isinstance(ms, int | float):
                labels = (task.function, task.model_name, str(stage))
                self.stage_time.labels(*labels).observe(ms / 1000)
