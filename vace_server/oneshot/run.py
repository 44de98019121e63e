"""Runs one `vace-server generate` task: validate, load, produce, encode."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from vace_server.api.wire_names import wire_message
from vace_server.errors import AlgoError, ServiceError, UploadError
from vace_server.media.clip import MediaSource
from vace_server.settings import Settings
from vace_server.tasks.spec import TaskSpec

if TYPE_CHECKING:
    import numpy as np

    from vace_server.engine.loader import LoadedModel
    from vace_server.model_inputs import VaceInputs


from vace_server.oneshot.console import ConsoleProgress, ConsoleStagedMedia
from vace_server.oneshot.local_media import LocalMediaSource
from vace_server.oneshot.request import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    LocalFiles,
    OneShotOptions,
    UsageError,
    build_body,
    check_out_path,
    validate_body,
)

log = logging.getLogger(__name__)


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


def _produce(
    spec: TaskSpec, media: MediaSource, settings: Settings, progress: ConsoleProgress
) -> Produced:
    """Loads the model and annotators, then runs the worker's `produce_video`.

    Raises: ServiceError, AlgoError (any crash), ModelLoadError / AnnotatorLoadError."""
    from vace_server.annotators.registry import load_annotators
    from vace_server.engine.loader import load_model
    from vace_server.engine.prompt_rewrite import build_rewriter
    from vace_server.worker.produce import produce_video

    progress.stage("loading", settings.engine.model)
    model = load_model(settings)
    annotators = load_annotators(settings)
    try:
        produced = produce_video(
            spec,
            ConsoleStagedMedia(media, progress),
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
    out = check_out_path(options.out)
    spec = validate_body(body)
    if remote is None:
        from vace_server.media.images import MediaFetcher

        remote = MediaFetcher(settings)
    media = LocalMediaSource(files, remote)

    with ConsoleProgress(console) as progress:
        produced = _produce(spec, media, settings, progress)
        try:
            encode_mp4(produced.video, settings.engine.output_fps, out)
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
        fps=settings.engine.output_fps,
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


def _configure_logging(console: Console, settings: Settings) -> None:
    """Library logs go above the progress display, only warnings and errors unless
    VACE_LOG_LEVEL is set (its default suits a server's log, not a terminal's progress).
    An already configured root logger (embedding, pytest) is left alone."""
    from rich.logging import RichHandler

    if logging.getLogger().handlers:
        return
    chosen = "log_level" in settings.logging.model_fields_set
    level = settings.logging.log_level if chosen else "WARNING"
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
    _configure_logging(err, settings)

    def report(code: str, message: str, cause: BaseException | None = None) -> None:
        err.print(f"[bold red]{code}[/]: ", end="")
        err.print(message, markup=False, highlight=False, soft_wrap=True)
        if cause is not None:
            text = f"  cause: {type(cause).__name__}: {cause}"
            err.print(text, markup=False, highlight=False, soft_wrap=True)

    try:
        result = generate_one(options, settings, err, remote=remote)
    except UsageError as exc:
        report(exc.code, wire_message(exc.message))
        return EXIT_USAGE
    except ServiceError as exc:
        cause = exc.__cause__ if isinstance(exc, AlgoError | UploadError) else None
        report(exc.code, wire_message(exc.message), cause)
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
