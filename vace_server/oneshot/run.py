"""Runs one `vace-server generate` task: check the options, load, run the task pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from vace_server.api.wire_names import wire_message
from vace_server.errors import AlgoError, ServiceError, UploadError
from vace_server.media.clip import MediaSource
from vace_server.oneshot.console import ConsoleProgress
from vace_server.oneshot.local_media import LocalMediaSource
from vace_server.oneshot.request import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    OneShotOptions,
    OptionValues,
    UsageError,
    build_spec,
    check_out_path,
)
from vace_server.settings import Settings
from vace_server.worker.pipeline import PipelineResult

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the run
def _write_failure(out: Path, exc: Exception) -> ServiceError:
    return UploadError(f"Failed to write the result to {out}: {exc}")


def local_machine_fetcher(settings: Settings) -> MediaSource:
    """The `MediaFetcher` of `vace-server generate`: it runs on the user's own machine, for
    them, so the address rule that keeps a server's clients off its private networks does not
    apply: loopback and private URLs are reached without VACE_MEDIA_ALLOW_PRIVATE_NETWORKS.
    (The other download rules stay: caps, timeouts, redirects. `serve` never builds this.)"""
    from vace_server.media.addresses import address_policy
    from vace_server.media.fetch import UrlFetcher
    from vace_server.media.images import MediaFetcher

    fetcher = UrlFetcher(settings, address_allowed=address_policy(allow_private=True))
    return MediaFetcher(settings, fetcher)


def generate_one(
    options: OneShotOptions,
    settings: Settings,
    console: Console,
    *,
    remote: MediaSource | None = None,
) -> PipelineResult:
    """Checks, runs and writes one task. `remote` replaces the `MediaFetcher` for URLs.

    Returns: what was written to `options.out`.
    Raises: UsageError (bad local file or --out, or a request the API would refuse with
    HTTP 400; checked before anything is loaded), ServiceError (the task failed),
    ModelLoadError / AnnotatorLoadError."""
    from vace_server.annotators.registry import load_annotators
    from vace_server.engine.loader import load_model
    from vace_server.engine.prompt_rewrite import build_rewriter
    from vace_server.worker.pipeline import TaskPipeline

    values = OptionValues.of(options)
    out = check_out_path(options.out)
    spec = build_spec(values)
    if remote is None:
        remote = local_machine_fetcher(settings)

    with ConsoleProgress(console) as progress:
        progress.loading(settings.engine.model)
        pipeline = TaskPipeline(
            model=load_model(settings),
            annotators=load_annotators(settings),
            settings=settings,
            rewriter=build_rewriter(settings),
            write_failure=_write_failure,
        )
        return pipeline(spec, LocalMediaSource(remote), out, on_progress=progress)


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
    if level != "DEBUG":  # errors are reported as `<code>: <message>`, not as a traceback
        handler.addFilter(_without_traceback)
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler])


def _without_traceback(record: logging.LogRecord) -> bool:
    record.exc_info = None
    record.exc_text = None
    return True


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
    eff = result.effective
    out.print(
        f"wrote {result.out}: {result.frames} frames, {result.width}x{result.height}, "
        f"{result.fps} fps, {result.seconds:.2f} s (seed {eff.seed}, model {eff.model})",
        markup=False,
    )
    width, height = eff.generation_size
    line = (
        f"generated at {width}x{height}, {eff.generation_frames} frames, preset "
        f"{eff.preset or 'none'}, {eff.steps} steps, guidance {eff.guidance_scale:g}"
    )
    if eff.mean_step_seconds is not None:
        line += f", {eff.mean_step_seconds:.2f} s/step"
    out.print(line, markup=False)
    if eff.model == "tiny":
        out.print("note: the tiny random test model was used; the video is noise", markup=False)
    if result.prompt != options.prompt:
        out.print(f"prompt used: {result.prompt}", markup=False)
    return EXIT_OK
