"""`make demo`: a first run that needs nothing but this checkout (no network, no weights).

Starts `vace-server serve` on a free loopback port with the tiny random model and a temporary
data folder, serves the sample media (`samples/`, see `samples.py`) from a second loopback
server, and runs all five functions through the real `dashscope` SDK, one of them with a
local `file://` reference that the SDK uploads through the server's getPolicy flow. Prints
each task's id, status, usage and video URL, and the playground URL; stops the server at the
end. Exit code 0 when every task succeeded, 1 otherwise.

The media fetcher refuses loopback addresses by default (hostile-URL rule): the demo's server
alone trusts 127.0.0.1/32 (`VACE_MEDIA_ALLOWED_NETWORKS`), nothing else changes.

    python -m vace_server.demo [--samples DIR] [--keep] [--stay] [--only FUNCTION ...]
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vace_server.demo.serve_process import ServeProcess

DEMO_KEY = "sk-demo-local"
MODEL = "wanx2.1-vace-plus"
# The tiny model generates 17 frames (about 1 s); the media fetcher trusts loopback only.
SERVER_ENV = {
    "VACE_MODEL": "tiny",
    "VACE_NUM_FRAMES": "17",
    "VACE_HOST": "127.0.0.1",
    "VACE_API_KEYS": f"{DEMO_KEY}=demo",
    "VACE_MEDIA_ALLOWED_NETWORKS": "127.0.0.1/32",
    "VACE_POLL_SECONDS": "0.2",
}


# ---------------------------------------------------------------- the sample server
class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve_samples(folder: Path) -> Iterator[str]:
    """Serves `folder` read-only on a free loopback port; yields its base URL."""
    handler = partial(_QuietFiles, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="demo-samples", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------- the five tasks
@dataclass(frozen=True)
class DemoTask:
    """One `client.videos.jobs.create` call: a label and its keyword arguments."""

    label: str
    kwargs: dict[str, Any]

    @property
    def function(self) -> str:
        return str(self.kwargs["function"])


def demo_tasks(media: str, samples: Path) -> list[DemoTask]:
    """The five functions on the samples (`media`: their loopback base URL). The subject of
    image_reference is a local file: the SDK uploads `file://` URLs itself (getPolicy)."""
    clip = f"{media}/clip.mp4"
    return [
        DemoTask("image_reference (file:// upload)", dict(
            function="image_reference", prompt="A red ball rolls across a green meadow.",
            extra_input={"ref_images_url": [
                (samples / "subject.png").resolve().as_uri(), f"{media}/scene.png"]},
            parameters={"obj_or_bg": ["obj", "bg"]}, size="960*960",
        )),
        DemoTask("video_repainting", dict(
            function="video_repainting", prompt="A golden cube glides over a stone floor.",
            extra_input={"video_url": clip}, parameters={"control_condition": "scribble"},
        )),
        DemoTask("video_edit", dict(
            function="video_edit", prompt="A small orange cat walks across the frame.",
            extra_input={"video_url": clip, "mask_video_url": f"{media}/mask-video.mp4"},
            size="960*960",
        )),
        DemoTask("video_extension", dict(
            function="video_extension", prompt="The sun sets slowly over the meadow.",
            extra_input={"first_clip_url": f"{media}/short-clip.mp4"},
        )),
        DemoTask("video_outpainting", dict(
            function="video_outpainting", prompt="A square dances on a wide stage.",
            extra_input={"video_url": clip},
            parameters={"top_scale": 1.5, "bottom_scale": 1.5, "left_scale": 1.5,
                        "right_scale": 1.5},
        )),
    ]  # fmt: skip


def run_task(client: Any, task: DemoTask, say: Callable[[str], None]) -> bool:
    """Creates one job, waits for it and prints its result. Returns whether it SUCCEEDED."""
    say(f"{task.label}")
    try:
        job = client.videos.jobs.create(model=MODEL, prompt_extend=False, seed=7, **task.kwargs)
        done = client.videos.jobs.wait(job, poll_interval=0.2, max_interval=1.0, timeout=300)
    except Exception as exc:  # the SDK raises for a refused request and a FAILED task alike
        say(f"  FAILED: {type(exc).__name__}: {exc}")
        return False
    usage = done.usage.model_dump(exclude_none=True) if done.usage is not None else {}
    say(f"  task_id: {done.task_id}")
    say(f"  status:  {done.status}")
    say(f"  usage:   {_usage_text(usage)}")
    if done.succeeded:
        say(f"  video:   {done.video_url}")
    else:
        output = done.output or {}
        say(f"  error:   {output.get('code')}: {output.get('message')}")
    return bool(done.succeeded)


def _usage_text(usage: dict[str, Any]) -> str:
    keys = ("video_count", "video_duration", "video_ratio", "preset", "steps")
    shown = {k: usage[k] for k in keys if k in usage}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "(none)"


def run_demo(
    samples: Path,
    work: Path,
    say: Callable[[str], None] = print,
    *,
    only: Collection[str] = (),
    hold: Callable[[str], None] | None = None,
) -> int:
    """The demo in `work` (data folder, server log): every function, or those in `only`.
    `hold`, when given, is called with the server's base URL after the tasks, before the
    server stops (`--stay`: until Ctrl-C). Returns the exit code."""
    try:
        import dashscope
    except ImportError:  # a dev dependency (pyproject's `dev` extra), not the server's
        say("the demo runs the dashscope SDK: pip install 'dashscope==2.0.2' (or `make demo`)")
        return 2

    from vace_server.demo.samples import SAMPLES, write_samples

    if not all((samples / name).is_file() for name in SAMPLES):
        write_samples(samples)  # a checkout without them: drawn now, deterministically
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **SERVER_ENV, "VACE_DATA_DIR": str(work / "data")}
    server = ServeProcess(env, work / "server.log")
    say(f"starting vace-server (tiny random model) on {server.base_url} ...")
    try:
        try:
            server.start()
        except RuntimeError as exc:
            say(f"vace-server did not start: {exc}")
            return 1
        with serve_samples(samples) as media:
            say(f"samples from {samples} served at {media}")
            client = dashscope.Client(api_key=DEMO_KEY, base_url=f"{server.base_url}/api/v1")
            tasks = [t for t in demo_tasks(media, samples) if not only or t.function in only]
            results = [run_task(client, t, say) for t in tasks]
        ok = sum(results)
        say(f"{ok}/{len(results)} tasks succeeded (the tiny model's videos are noise; real "
            "weights: docs/gpu.md)")  # fmt: skip
        say(f"playground: {server.base_url}/playground (API key {DEMO_KEY})")
        if hold is None:
            say("this demo server stops now (`--stay` keeps it up; `make serve` runs your own)")
        else:
            hold(server.base_url)
    finally:
        server.stop()
    return 0 if ok == len(results) else 1


def _bypass_proxies_for_loopback() -> None:
    """Everything the demo reaches is on loopback: an HTTP(S)_PROXY of the user's shell must
    not carry the SDK's requests away (requests and httpx both read NO_PROXY)."""
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e for e in os.environ.get(name, "").split(",") if e.strip()]
        missing = [host for host in ("127.0.0.1", "localhost") if host not in entries]
        os.environ[name] = ",".join(entries + missing)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _until_interrupted(base_url: str) -> None:
    print(f"the server stays up at {base_url}: Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print()


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vace_server.demo", description=__doc__)
    parser.add_argument(
        "--samples", type=Path, default=Path("samples"),
        help="sample media folder (drawn there when missing)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the data folder (videos, database) and the server log",
    )  # fmt: skip
    parser.add_argument(
        "--stay", action="store_true",
        help="keep the server up after the tasks (the playground shows them) until Ctrl-C",
    )  # fmt: skip
    parser.add_argument(
        "--only", action="append", default=[], metavar="FUNCTION",
        help="run this function only (repeatable), e.g. video_edit",
    )  # fmt: skip
    args = parser.parse_args(argv)
    hold = _until_interrupted if args.stay else None
    # a SIGTERM unwinds like Ctrl-C, so the server child is stopped, not orphaned
    signal.signal(signal.SIGTERM, _interrupt)
    _bypass_proxies_for_loopback()
    try:
        return _main(args.samples, keep=args.keep, only=args.only, hold=hold)
    except KeyboardInterrupt:  # stopped during the tasks: the server is stopped by now
        print("interrupted", file=sys.stderr)
        return 130


def _main(
    samples: Path, *, keep: bool, only: Collection[str], hold: Callable[[str], None] | None
) -> int:
    if keep:
        work = Path(tempfile.mkdtemp(prefix="vace-demo-"))
        code = run_demo(samples, work, only=only, hold=hold)
        print(f"kept: videos in {work / 'data' / 'outputs'}, server log {work / 'server.log'}")
        return code
    with tempfile.TemporaryDirectory(prefix="vace-demo-") as work_dir:
        code = run_demo(samples, Path(work_dir), only=only, hold=hold)
    if code != 0:
        print("the server's log is gone with its temporary folder: rerun with --keep to read it")
    return code
