"""The pipelined worker: a task's three steps on three threads, so the model never waits for
the CPU work around it.

* the claim thread claims up to `depth` tasks ahead of the model's (oldest first, as every
  claim), and fetches + preprocesses each (`WorkerLoop.prepare`);
* the model thread (the caller's) denoises them in claim order (`WorkerLoop.denoise`);
* the delivery thread renders, encodes and stores each finished task (`WorkerLoop.deliver`).

Every held task keeps its lease renewed and its cancel watched (its `Job`'s heartbeat) from
its claim on: a look-ahead task canceled while it waits ends CANCELED without running; on a
shutdown, the task in hand gets the grace period (the one on the model, or, when the model was
idle, the one being prepared for it: that task is no look-ahead, nothing is ahead of it) and
the look-ahead tasks go back to the queue at once (their attempt not counted); a worker that
dies holds its tasks under its own id, so `release_worker` (the supervisor) or the lease
expiry (maintenance) requeues all of them.

Memory: the prepared inputs waiting for the model and the frames waiting for delivery count
against `budget_bytes`. No look-ahead task is claimed while they reach it, and a prepared task
that would push them over it is not kept: its inputs are dropped and prepared again on the
model's thread when its turn comes (the claim is kept, so the queue order is too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from vace_server.worker.loop import Job, WorkerLoop

log = logging.getLogger(__name__)

# Denoised tasks held for delivery, the one being delivered included: the model denoises task N
# while N-1 is encoded and stored, and frames never pile up when delivery is the slower step.
DELIVERY_QUEUE = 1


class Lookahead:
    """Runs a `WorkerLoop` pipelined until `should_stop()`; see the module docstring."""

    def __init__(self, loop: WorkerLoop, *, depth: int, budget_bytes: int) -> None:
        self.loop = loop
        self.depth = depth
        self.budget_bytes = budget_bytes
        self.poll = loop.settings.queue.poll_seconds
        self._cond = threading.Condition()
        self._ready: deque[Job] = deque()  # claimed and prepared (or `inline`), claim order
        self._to_deliver: deque[Job] = deque()
        self._held_bytes = 0  # inputs in `_ready` + frames waiting for or in delivery
        self._model_done = False
        self._claims_done = False
        self._model_idle = False  # the model thread waits for a prepared task

    @property
    def held_bytes(self) -> int:
        with self._cond:
            return self._held_bytes

    def run(self, should_stop: Callable[[], bool]) -> None:
        claimer = threading.Thread(target=self._claim_loop, args=(should_stop,), name="claim")
        deliverer = threading.Thread(target=self._delivery_loop, name="deliver")
        claimer.start()
        deliverer.start()
        try:
            self._model_loop(should_stop)
        finally:
            claimer.join()
            self._requeue_ready()  # what the model thread left when it stopped first
            with self._cond:
                self._model_done = True
                self._cond.notify_all()
            deliverer.join()

    # ------------------------------------------------------------------ the model thread
    def _model_loop(self, should_stop: Callable[[], bool]) -> None:
        loop = self.loop
        while (job := self._next_ready(should_stop)) is not None:
            try:
                with job.context():
                    # Over the memory budget, a look-ahead task is prepared in its turn.
                    if job.inline and not loop.prepare(job):
                        job.close()
                        continue
                    if not loop.denoise(job):
                        job.close()
                        continue
            except Exception:  # the store gave up (settle's deadline): its lease runs out
                log.exception(
                    "task %s: could not be ended; its lease will run out", job.claim.task.id
                )
                job.close()
                continue
            self._hand_to_delivery(job)

    def _next_ready(self, should_stop: Callable[[], bool]) -> Job | None:
        """The oldest prepared task, or None once stopping. A model busy when the stop came
        takes nothing more (the claim thread requeues what waits); an idle one waits for the
        claim thread to end and takes the task in hand it leaves (the one it was preparing)."""
        with self._cond:
            if should_stop():
                return None
            self._model_idle = True
            try:
                while not self._ready:
                    if self._claims_done:
                        return None
                    self._cond.wait(self.poll)
            finally:
                self._model_idle = False
            job = self._ready.popleft()
            self._held_bytes -= job.held_bytes
            job.held_bytes = 0
            self._cond.notify_all()  # room for the next look-ahead claim
            return job

    def _hand_to_delivery(self, job: Job) -> None:
        size = int(getattr(job.denoised, "nbytes", 0))
        with self._cond:
            while len(self._to_deliver) >= DELIVERY_QUEUE:
                self._cond.wait()
            job.held_bytes = size
            self._held_bytes += size
            self._to_deliver.append(job)
            self._cond.notify_all()

    # ------------------------------------------------------------------ the claim thread
    def _claim_loop(self, should_stop: Callable[[], bool]) -> None:
        failing = False
        try:
            while not should_stop():
                self._end_canceled()
                if not self._room():
                    with self._cond:
                        self._cond.wait(self.poll)
                    continue
                try:
                    claim = self.loop.store.claim(
                        self.loop.worker_id, models=self.loop.settings.claim_names()
                    )
                    if claim is None:
                        self.loop.store.wait_for_work(self.poll)
                        continue
                except SQLAlchemyError as exc:
                    failing = self.loop.database_down(exc, failing)
                    continue
                except Exception:  # never leave the model without claims: log, try again
                    log.exception("worker %s: claim failed", self.loop.worker_id)
                    time.sleep(self.poll)
                    continue
                if failing:
                    log.info("worker %s: database back", self.loop.worker_id)
                    failing = False
                self._prefetch(self.loop.open_job(claim))
        finally:
            # A shutdown: the look-ahead tasks go back now, not after the task in hand.
            self._requeue_ready(keep_in_hand=True)

    def _room(self) -> bool:
        """Another look-ahead claim fits: fewer than `depth` waiting, memory under budget."""
        with self._cond:
            return len(self._ready) < self.depth and self._held_bytes < self.budget_bytes

    def _prefetch(self, job: Job) -> None:
        try:
            with job.context():
                if not self.loop.prepare(job):
                    job.close()
                    return
        except Exception:
            log.exception("task %s: could not be ended; its lease will run out", job.claim.task.id)
            job.close()
            return
        size = int(getattr(job.prepared, "nbytes", 0))
        with self._cond:
            if self._held_bytes + size > self.budget_bytes:
                with job.context():
                    log.info(
                        "task %s: %d MB of prepared inputs over the look-ahead budget "
                        "(VACE_PREFETCH_MEMORY_MB); prepared again in its turn",
                        job.claim.task.id,
                        size // 2**20,
                    )
                job.prepared, job.inline = None, True
            else:
                job.held_bytes = size
                self._held_bytes += size
            self._ready.append(job)
            self._cond.notify_all()

    def _end_canceled(self) -> None:
        """Look-ahead tasks canceled while they wait end CANCELED now, never run."""
        with self._cond:
            canceled = [job for job in self._ready if job.canceled]
            for job in canceled:
                self._ready.remove(job)
                self._held_bytes -= job.held_bytes
        for job in canceled:
            try:
                with job.context():
                    self.loop.stop_canceled(job.claim)
            except Exception:
                log.exception("task %s: could not be ended", job.claim.task.id)
            finally:
                job.close()

    def _requeue_ready(self, *, keep_in_hand: bool = False) -> None:
        """On a shutdown: look-ahead tasks back to the queue, their attempt not counted. With
        `keep_in_hand` (the claim thread ending), the claims end too, and while the model is
        idle the oldest waiting task stays for it: it is the task in hand, not a look-ahead."""
        with self._cond:
            left = list(self._ready)
            kept = left[:1] if keep_in_hand and self._model_idle else []
            left = left[len(kept) :]
            self._ready = deque(kept)
            self._held_bytes -= sum(job.held_bytes for job in left)
            if keep_in_hand:
                self._claims_done = True
            self._cond.notify_all()
        for job in left:
            try:
                with job.context():
                    self.loop.requeue_interrupted(job.claim, started=False)
            except Exception:
                log.exception("task %s: could not be requeued", job.claim.task.id)
            finally:
                job.close()

    # ------------------------------------------------------------------ the delivery thread
    def _delivery_loop(self) -> None:
        while True:
            with self._cond:
                while not self._to_deliver and not self._model_done:
                    self._cond.wait()
                if not self._to_deliver:
                    return
                job = self._to_deliver[0]
            try:
                with job.context():
                    self.loop.deliver(job)
            except Exception:
                log.exception("task %s: could not be ended", job.claim.task.id)
            finally:
                job.close()
                with self._cond:
                    self._to_deliver.popleft()
                    self._held_bytes -= job.held_bytes
                    self._cond.notify_all()
