"""Where one task's time goes: wall-clock seconds per serving stage, recorded by the pipeline and
the worker loop, stored with the task's `effective` record (as `stage_ms`), shown in the
query's `usage`, and observed by the API's metrics as per-stage histograms.

The stages (a closed set; `STAGES` is their order): `fetch` (media downloads and reads),
`preprocess` (the function's input building, annotators, prompt extension; fetches excluded),
`prompt_encode` (the text encoder), `vae_encode` (conditioning frames into latents),
`denoise` (the rest of the pipeline call: the transformer steps and the scheduler),
`vae_decode`, `encode_video` (delivered frames: retime, resize, watermark, MP4), `store` (the
upload to the output storage). The pipeline call is prompt_encode + vae_encode + denoise +
vae_decode; everything else is serving overhead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

STAGES = (
    "fetch",
    "preprocess",
    "prompt_encode",
    "vae_encode",
    "denoise",
    "vae_decode",
    "encode_video",
    "store",
)
PIPELINE_CALL_STAGES = ("prompt_encode", "vae_encode", "denoise", "vae_decode")


class StageTimings:
    """Accumulated seconds per stage (a stage may run several times: one fetch per input).
    Safe to add to from several threads (a pipelined worker stores off the model thread)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + max(0.0, seconds)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Adds the wall time of the `with` body to `stage` (also when it raises)."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(stage, self._clock() - start)

    def seconds(self, stage: str) -> float:
        with self._lock:
            return self._seconds.get(stage, 0.0)

    def to_json(self) -> dict[str, float]:
        """Milliseconds per stage that ran, in `STAGES` order (0.1 ms resolution)."""
        with self._lock:
            return {s: round(self._seconds[s] * 1000, 1) for s in STAGES if s in self._seconds}


def overhead_ms(stage_ms: Mapping[str, float]) -> float:
    """The serving part of recorded stages: everything but the pipeline call."""
    return sum(v for k, v in stage_ms.items() if k not in PIPELINE_CALL_STAGES)
