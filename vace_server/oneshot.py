"""`vace-server generate`: run one task locally, without a server, database or storage.

The command line is turned into the DashScope create body a client would send and validated by
`api.validation.parse_create_request`, the single source of truth for the request rules, so
the CLI accepts and refuses exactly what the API does, with the same codes and messages.

Local files. The contract's URL rules accept only `http(s)://` (and `oss://` behind a
header), so a local path cannot travel through the body as `file://`. Each local path (or
`file://` URL) is instead given a placeholder URL `http://vace-oneshot.invalid/<run token>/<n>`
in the body, and `LocalMediaSource` maps exactly those URLs back to their files. The
placeholder passes the URL checks like any client URL; its `.invalid` host is reserved
(RFC 6761) so it can never reach the network, and the per-run token means no URL a user
typed can collide with one. The validator's messages name fields, never URLs, so placeholders
do not leak into errors. Local files then go through the same checks as downloads: the
contract's byte caps (10 MB images, 50 MB videos), then `load_image` / `load_mask_image` /
`decode_video` on their bytes. Real URLs go to `MediaFetcher` (hostile-URL rules included; set
VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=1 for a URL on a local network).

Then the worker's pipeline runs: build_inputs → prompt extension → generate → render_output →
encode_mp4, with a `rich` progress display on stderr (stages, denoising steps, ETA).

Exit codes: 0 success; 1 the task failed (a DashScope async error such as InvalidFile.Format,
InternalError.Algo, or the model could not be loaded); 2 usage errors (a request the API
would answer with HTTP 400, a missing local file, an unusable --out). Errors are printed as
`<code>: <message>` on stderr, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from PIL import Image
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from vace_server.api.validation import SEED_MAX, parse_create_request
from vace_server.errors import AlgoError, InvalidFile, InvalidURL, ServiceError, UploadError
from vace_server.functions.base import MediaSource, VideoClip
from vace_server.settings import Settings
from vace_server.tasks.spec import TaskSpec

if TYPE_CHECKING:
    import numpy as np

    from vace_server.engine.loader import LoadedModel
    from vace_server.functions.base import VaceInputs

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

WIRE_MODEL = "wanx2.1-vace-plus"
PLACEHOLDER_HOST = "vace-oneshot.invalid"
_REMOTE_SCHEMES = ("http://", "https://")


class UsageError(Exception):
    """A problem with the command line, found before any work (exit code 2): an unusable
    local file or --out, or a request the API would refuse with HTTP 400 (then `code` is the
    DashScope code and `message` its message)."""

    def __init__(self, message: str, *, code: str = "UsageError") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------- options → request body
@dataclass(frozen=True)
class OneShotOptions:
    """The command's options, one per DashScope field (None / empty = not sent).

    Media fields hold a local path, a `file://` URL or an http(s) URL."""

    out: Path
    function: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    refs: tuple[str, ...] = ()
    obj_or_bg: tuple[str, ...] = ()
    video: str | None = None
    mask: str | None = None
    mask_video: str | None = None
    mask_frame_id: int | None = None
    mask_type: str | None = None
    expand_mode: str | None = None
    expand_ratio: float | None = None
    first_frame: str | None = None
    last_frame: str | None = None
    first_clip: str | None = None
    last_clip: str | None = None
    control: str | None = None
    strength: float | None = None
    size: str | None = None
    top_scale: float | None = None
    bottom_scale: float | None = None
    left_scale: float | None = None
    right_scale: float | None = None
    seed: int | None = None
    watermark: bool | None = None
    prompt_extend: bool | None = None


# option attribute -> (command-line flag, wire field in `input`)
_INPUT_MEDIA = {
    "video": ("--video", "video_url"),
    "mask": ("--mask", "mask_image_url"),
    "mask_video": ("--mask-video", "mask_video_url"),
    "first_frame": ("--first-frame", "first_frame_url"),
    "last_frame": ("--last-frame", "last_frame_url"),
    "first_clip": ("--first-clip", "first_clip_url"),
    "last_clip": ("--last-clip", "last_clip_url"),
}
# option attribute -> wire field in `parameters`
_PARAMETERS = {
    "mask_type": "mask_type",
    "expand_mode": "expand_mode",
    "expand_ratio": "expand_ratio",
    "control": "control_condition",
    "strength": "strength",
    "size": "size",
    "top_scale": "top_scale",
    "bottom_scale": "bottom_scale",
    "left_scale": "left_scale",
    "right_scale": "right_scale",
    "seed": "seed",
    "watermark": "watermark",
    "prompt_extend": "prompt_extend",
}


class LocalFiles:
    """Placeholder URLs for local files (see the module docstring) and the way back."""

    def __init__(self) -> None:
        self._prefix = f"http://{PLACEHOLDER_HOST}/{secrets.token_hex(8)}/"
        self._paths: dict[str, Path] = {}

    def wire_value(self, value: str, option: str) -> str:
        """What to put in the body for a media option's value.

        http(s) URLs, and strings with another scheme that name no local file (e.g. `oss://`),
        go as given, so the validator judges them like any client's. Local paths and `file://`
        URLs get a placeholder. Raises: UsageError when the local file is missing or not a
        readable regular file."""
        if value.lower().startswith(_REMOTE_SCHEMES):
            return value
        if value.lower().startswith("file://"):
            parts = urlsplit(value)
            if parts.netloc not in ("", "localhost"):
                raise UsageError(f"{option}: only local file:// URLs are supported: {value}")
            path = Path(unquote(parts.path))
        else:
            path = Path(value).expanduser()
            if "://" in value and not path.exists():
                return value
        if not path.is_file():
            what = "is not a file" if path.exists() else "no such file"
            raise UsageError(f"{option}: {what}: {value}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{option}: cannot read {value}")
        url = f"{self._prefix}{len(self._paths)}"
        self._paths[url] = path.resolve()
        return url

    def path(self, url: str) -> Path | None:
        """The local file behind a placeholder URL; None for any other URL."""
        return self._paths.get(url)


def build_body(options: OneShotOptions, files: LocalFiles) -> bytes:
    """The DashScope create body for `options` (fields that were not given are left out).

    Raises: UsageError for an unusable local file."""
    wire_input: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    if options.function is not None:
        wire_input["function"] = options.function
    if options.prompt is not None:
        wire_input["prompt"] = options.prompt
    if options.negative_prompt is not None:
        wire_input["negative_prompt"] = options.negative_prompt
    if options.refs:
        wire_input["ref_images_url"] = [files.wire_value(v, "--ref") for v in options.refs]
    for attr, (flag, wire) in _INPUT_MEDIA.items():
        value = getattr(options, attr)
        if value is not None:
            wire_input[wire] = files.wire_value(value, flag)
    if options.mask_frame_id is not None:
        wire_input["mask_frame_id"] = options.mask_frame_id
    if options.obj_or_bg:
        parameters["obj_or_bg"] = list(options.obj_or_bg)
    for attr, wire in _PARAMETERS.items():
        value = getattr(options, attr)
        if value is not None:
            parameters[wire] = value
    body = {"model": WIRE_MODEL, "input": wire_input, "parameters": parameters}
    return json.dumps(body, ensure_ascii=False).encode()


# ---------------------------------------------------------------- media
def _read_capped(path: Path, field: str, max_bytes: int) -> bytes:
    """The file's bytes, refused like a download over `max_bytes` (InvalidFile.Size).

    Raises: InvalidFile.Size; InvalidURL when the file cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidURL(f"Cannot read the file of {field}: {exc.strerror or exc}.") from exc
    if len(data) > max_bytes:
        raise InvalidFile(
            f"The file of {field} exceeds the size limit of {max_bytes / (1024 * 1024):g} MB.",
            code="InvalidFile.Size",
        )
    return data


class LocalMediaSource:
    """`MediaSource` reading placeholder URLs from local files through the download checks
    (same caps, same loaders) and delegating every other URL to `remote`."""

    def __init__(self, files: LocalFiles, remote: MediaSource) -> None:
        self.files = files
        self.remote = remote

    def fetch_image(self, url: str, field: str) -> Image.Image:
        from vace_server.media.images import IMAGE_MAX_BYTES, load_image

        path = self.files.path(url)
        if path is None:
            return self.remote.fetch_image(url, field)
        return load_image(_read_capped(path, field, IMAGE_MAX_BYTES), field)

    def fetch_mask_image(self, url: str, field: str) -> Image.Image:
        from vace_server.media.images import IMAGE_MAX_BYTES, load_mask_image

        path = self.files.path(url)
        if path is None:
            return self.remote.fetch_mask_image(url, field)
        return load_mask_image(_read_capped(path, field, IMAGE_MAX_BYTES), field)

    def fetch_video(self, url: str, field: str, *, max_seconds: float) -> VideoClip:
        from vace_server.media.video import VIDEO_MAX_BYTES, decode_video

        path = self.files.path(url)
        if path is None:
            return self.remote.fetch_video(url, field, max_seconds=max_seconds)
        return decode_video(
            _read_capped(path, field, VIDEO_MAX_BYTES), field, max_seconds=max_seconds
        )


# ---------------------------------------------------------------- progress
class ConsoleProgress:
    """Stages and denoising steps on a `rich` progress display.

    Same protocol as the worker's `Progress` (`stage(name)`, `step(done, total)`), so the
    pipeline code can report to either; the ETA is the mean step time times the steps left,
    as the server reports it."""

    _LABELS: Mapping[str, str] = {
        "loading": "loading model",
        "fetching": "inputs",
        "preprocessing": "inputs",
        "prompt": "prompt",
        "denoising": "denoising",
        "decoding": "decoding",
        "encoding": "encoding",
    }

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._display = Progress(
            _StatusColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._row: TaskID | None = None
        self._label: str | None = None
        self._step_started: float | None = None
        self.step_times: list[float] = []

    def __enter__(self) -> ConsoleProgress:
        self._display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._finish_row()
        elif self._row is not None:
            self._display.update(self._row, failed=True)
            self._display.stop_task(self._row)
        self._display.stop()

    def stage(self, name: str, detail: str = "") -> None:
        label = self._LABELS.get(name, name)
        if label != self._label:
            self._finish_row()
            self._row = self._display.add_task(label, total=None, info="", failed=False)
            self._label = label
        assert self._row is not None
        description = f"{label}: {detail}" if detail else label
        self._display.update(self._row, description=description)
        if name == "denoising":
            self._step_started = self._clock()

    def step(self, done: int, total: int) -> None:
        """Denoising step callback: `done` of `total` steps finished."""
        now = self._clock()
        if self._step_started is not None:
            self.step_times.append(now - self._step_started)
        self._step_started = now
        info = f"step {done}/{total}"
        if self.step_times:
            mean = sum(self.step_times) / len(self.step_times)
            info += f"  {mean:.2f} s/step  ETA {_clock_text(mean * (total - done))}"
        if self._row is not None:
            self._display.update(self._row, total=total, completed=done, info=info)
        if done >= total:
            self.stage("decoding")

    def _finish_row(self) -> None:
        if self._row is None:
            return
        task = self._display.tasks[self._row]
        total = task.total if task.total is not None else 1
        self._display.update(self._row, total=total, completed=total)
        self._display.stop_task(self._row)
        self._row = self._label = None


class _StatusColumn(SpinnerColumn):
    """A spinner while a stage runs, ✓ when it is done, a red ✗ when it failed."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("failed"):
            return Text("✗", style="bold red")
        return super().render(task)


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _StagedMedia:
    """Reports which field is being read (the CLI twin of worker.progress.StagedMedia)."""

    def __init__(self, inner: MediaSource, progress: ConsoleProgress) -> None:
        self.inner = inner
        self.progress = progress

    @contextmanager
    def _fetching(self, field: str) -> Iterator[None]:
        self.progress.stage("fetching", f"reading {field}")
        try:
            yield
        finally:
            self.progress.stage("preprocessing")

    def fetch_image(self, url: str, field: str) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_image(url, field)

    def fetch_mask_image(self, url: str, field: str) -> Image.Image:
        with self._fetching(field):
            return self.inner.fetch_mask_image(url, field)

    def fetch_video(self, url: str, field: str, *, max_seconds: float) -> VideoClip:
        with self._fetching(field):
            return self.inner.fetch_video(url, field, max_seconds=max_seconds)


# ---------------------------------------------------------------- the run
@dataclass(frozen=True)
class Produced:
    """What `_produce` hands to the encoder."""

    model: LoadedModel
    inputs: VaceInputs
    prompt: str  # the prompt generated with (after prompt extension)
    video: np.ndarray  # uint8 (N, H, W, 3), the delivered frames


@dataclass(frozen=True)
class OneShotResult:
    out: Path
    frames: int
    width: int
    height: int
    fps: int
    seed: int
    model: str
    prompt: str
    effective: dict[str, Any] = field(default_factory=dict)


def _check_out(out: Path) -> Path:
    out = out.expanduser()
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; give a file name such as {out / 'out.mp4'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")
    return out


def _validate(body: bytes) -> TaskSpec:
    """`parse_create_request` as the API runs it (no `oss://` resolution: there is no upload
    store here). Raises: UsageError carrying the DashScope code and message."""
    try:
        return parse_create_request(
            body, oss_resolve=False, draw_seed=lambda: secrets.randbelow(SEED_MAX + 1)
        )
    except ServiceError as exc:
        raise UsageError(exc.message, code=exc.code) from exc


def _produce(
    spec: TaskSpec, media: MediaSource, settings: Settings, progress: ConsoleProgress
) -> Produced:
    """Loads the model and annotators, then runs the worker's `produce_video`.

    Raises: ServiceError, AlgoError (any crash), ModelLoadError / AnnotatorLoadError."""
    from vace_server.annotators.registry import load_annotators
    from vace_server.engine.loader import load_model
    from vace_server.engine.prompt_rewrite import build_rewriter
    from vace_server.worker.produce import produce_video

    progress.stage("loading", settings.model)
    model = load_model(settings)
    annotators = load_annotators(settings)
    try:
        produced = produce_video(
            spec,
            _StagedMedia(media, progress),
            model=model,
            annotators=annotators,
            settings=settings,
            progress=progress,
            rewriter=build_rewriter(settings),
        )
    except ServiceError:
        raise
    except Exception as exc:  # the worker fails these tasks the same way
        log.debug("building the model inputs failed", exc_info=True)
        raise AlgoError() from exc
    return Produced(
        model=model, inputs=produced.inputs, prompt=produced.prompt, video=produced.video
    )


def generate_one(
    options: OneShotOptions,
    settings: Settings,
    console: Console,
    *,
    remote: MediaSource | None = None,
) -> OneShotResult:
    """Validates, runs and writes one task. `remote` replaces the `MediaFetcher` for URLs.

    Returns: what was written to `options.out`.
    Raises: UsageError (bad local file or --out, or a request the API would refuse with
    HTTP 400; checked before anything is loaded), ServiceError (the task failed),
    ModelLoadError / AnnotatorLoadError."""
    from vace_server.media.encode import encode_mp4

    files = LocalFiles()
    body = build_body(options, files)
    out = _check_out(options.out)
    spec = _validate(body)
    if remote is None:
        from vace_server.media.images import MediaFetcher

        remote = MediaFetcher(settings)
    media = LocalMediaSource(files, remote)

    with ConsoleProgress(console) as progress:
        produced = _produce(spec, media, settings, progress)
        try:
            encode_mp4(produced.video, settings.output_fps, out)
        except Exception as exc:
            log.debug("encoding failed", exc_info=True)
            raise UploadError(f"Failed to write the result to {out}: {exc}") from exc
    model, inputs, video = produced.model, produced.inputs, produced.video
    steps = progress.step_times
    return OneShotResult(
        out=out,
        frames=len(video),
        width=int(video.shape[2]),
        height=int(video.shape[1]),
        fps=settings.output_fps,
        seed=spec.seed,
        model=model.name,
        prompt=produced.prompt,
        effective={
            "generation_size": [inputs.width, inputs.height],
            "generation_frames": inputs.num_frames,
            "steps": model.num_inference_steps,
            "mean_step_seconds": round(sum(steps) / len(steps), 4) if steps else None,
        },
    )


def _configure_logging(console: Console) -> None:
    """Library logs go above the progress display, at WARNING unless VACE_LOG_LEVEL says
    otherwise. An already configured root logger (embedding, pytest) is left alone."""
    from rich.logging import RichHandler

    if logging.getLogger().handlers:
        return
    level = os.environ.get("VACE_LOG_LEVEL", "WARNING").upper()
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler])


def run(
    options: OneShotOptions,
    settings: Settings,
    *,
    console: Console | None = None,
    remote: MediaSource | None = None,
) -> int:
    """The `vace-server generate` command. Returns the process exit code (EXIT_*).

    Progress and errors (`<code>: <message>`) go to stderr, the summary to stdout."""
    from vace_server.annotators.errors import AnnotatorLoadError
    from vace_server.engine.loader import ModelLoadError

    err = console or Console(stderr=True)
    _configure_logging(err)

    def report(code: str, message: str, cause: BaseException | None = None) -> None:
        err.print(f"[bold red]{code}[/]: ", end="")
        err.print(message, markup=False, highlight=False, soft_wrap=True)
        if cause is not None:
            text = f"  cause: {type(cause).__name__}: {cause}"
            err.print(text, markup=False, highlight=False, soft_wrap=True)

    try:
        result = generate_one(options, settings, err, remote=remote)
    except UsageError as exc:
        report(exc.code, exc.message)
        return EXIT_USAGE
    except ServiceError as exc:
        cause = exc.__cause__ if isinstance(exc, AlgoError | UploadError) else None
        report(exc.code, exc.message, cause)
        return EXIT_FAILED
    except (ModelLoadError, AnnotatorLoadError) as exc:
        report(type(exc).__name__, str(exc))
        return EXIT_FAILED

    out = Console(soft_wrap=True, highlight=False)
    out.print(
        f"wrote {result.out}: {result.frames} frames, {result.width}x{result.height}, "
        f"{result.fps} fps, {result.frames / result.fps:.2f} s "
        f"(seed {result.seed}, model {result.model})",
        markup=False,
    )
    eff = result.effective
    width, height = eff["generation_size"]
    line = f"generated at {width}x{height}, {eff['generation_frames']} frames, {eff['steps']} steps"
    if eff["mean_step_seconds"] is not None:
        line += f", {eff['mean_step_seconds']:.2f} s/step"
    out.print(line, markup=False)
    if result.model == "tiny":
        out.print("note: the tiny random test model was used; the video is noise", markup=False)
    if result.prompt != options.prompt:
        out.print(f"prompt used: {result.prompt}", markup=False)
    return EXIT_OK
