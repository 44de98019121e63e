"""A small closed-loop HTTP/1.1 load generator: `concurrency` keep-alive connections, each
sending its next request as soon as the previous answer is read, for `seconds`.

Written on raw asyncio streams (no HTTP client library) so that the generator's own cost per
request is small and, above all, the same for every server it is pointed at: figures are
compared as ratios between servers measured with it side by side."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

RequestMaker = Callable[[int], bytes]  # request number -> the raw request bytes


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # answers that were not 2xx
    median_ms: float
    p90_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def http_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """One raw HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Reads one response with a Content-Length body. Returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this load generator")
    await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, make: RequestMaker, counter: list[int], stop_at: float,
    latencies: list[float], errors: list[int],
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            number = counter[0]
            counter[0] += 1
            start = time.perf_counter()
            writer.write(make(number))
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            if not 200 <= status < 300:
                errors.append(status)
    finally:
        writer.close()


async def _run(
    host: str, port: int, make: RequestMaker, concurrency: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors: list[int] = []
    counter = [0]
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(
        *(
            _connection(host, port, make, counter, stop_at, latencies, errors)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        errors=len(errors),
        median_ms=statistics.median(ordered) * 1000,
        p90_ms=ordered[int(0.9 * (len(ordered) - 1))] * 1000,
    )


def run_load(
    host: str, port: int, make: RequestMaker, *, concurrency: int, seconds: float
) -> LoadResult:
    """Runs the closed loop and returns what it measured."""
    return asyncio.run(_run(host, port, make, concurrency, seconds))
