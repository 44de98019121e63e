"""Sends due webhook deliveries from a background thread and a small pool, so a slow or dead
receiver never blocks the API, the workers, cancel or health."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vace_server.errors import ServiceError
from vace_server.media.fetch import UrlFetcher
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.transient import OutageLog
from vace_server.webhooks import signing
from vace_server.webhooks.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

Render = Callable[[TaskRecord, str], dict[str, Any]]


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        fetcher: UrlFetcher,
        render: Render,
        *,
        secret: str,
        timeout: float,
        senders: int = 4,
        interval: float = 1.0,
    ) -> None:
        self.outbox = outbox
        self.fetcher = fetcher
        self.render = render
        self.key = signing.secret_key(secret)
        self.timeout = timeout
        self.interval = interval
        self.senders = senders
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="webhook")
        self._busy = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> int:
        """Takes as many due deliveries as there are idle senders. Returns how many."""
        with self._lock:
            free = self.senders - self._busy
        if free <= 0:
            return 0
        taken = self.outbox.take_due(limit=free)
        for delivery in taken:
            with self._lock:
                self._busy += 1
            self._pool.submit(self._send_and_record, delivery)
        return len(taken)

    def send(self, delivery: Delivery) -> None:
        """One attempt; records the outcome. Never raises."""
        msg_id = f"msg_{delivery.id}"
        body = json.dumps(self.render(delivery.task, str(uuid.uuid4())), ensure_ascii=False)
        data = body.encode()
        headers = signing.headers(self.key, msg_id, int(time.time()), data)
        try:
            status = self.fetcher.post(
                delivery.url, body=data, headers=headers, timeout=self.timeout
            )
        except ServiceError as err:
            self._failed(delivery, f"{err.code}: {err.message}")
            return
        except Exception as exc:  # never let one receiver break the dispatcher
            self._failed(delivery, repr(exc))
            return
        if 200 <= status < 300:
            self.outbox.delivered(delivery)
            log.info("webhook %s for task %s delivered", delivery.id, delivery.task.id)
        else:
            self._failed(delivery, f"HTTP {status}")

    def _failed(self, delivery: Delivery, error: str) -> None:
        log.warning(
            "webhook %s for task %s, attempt %d failed: %s",
            delivery.id,
            delivery.task.id,
            delivery.attempt,
            error,
        )
        self.outbox.failed(delivery, error)

    def _send_and_record(self, delivery: Delivery) -> None:
        try:
            self.send(delivery)
        except Exception:
            log.exception("webhook %s: could not record the outcome", delivery.id)
        finally:
            with self._lock:
                self._busy -= 1

    def _loop(self) -> None:
        outage = OutageLog("webhook dispatch pass", log)
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
