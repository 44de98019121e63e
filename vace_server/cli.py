"""`vace-server` command line: serve, worker, generate (one task, no server), db upgrade."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from vace_server.logging_setup import configure_logging
from vace_server.settings import Settings

app = typer.Typer(
    help="Self-hosted, DashScope-compatible Wan VACE video API.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings(**overrides: Any) -> Settings:
    """Environment (VACE_*) first, then the flags that were actually given."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)


HostOpt = Annotated[str | None, typer.Option(help="Bind address [VACE_HOST].")]
PortOpt = Annotated[int | None, typer.Option(help="Port [VACE_PORT].")]
ModelOpt = Annotated[
    str | None, typer.Option(help="auto | tiny | local diffusers folder | hub id [VACE_MODEL].")
]
DataOpt = Annotated[Path | None, typer.Option(help="Data folder [VACE_DATA_DIR].")]
DbOpt = Annotated[str | None, typer.Option(help="SQLAlchemy URL [VACE_DATABASE_URL].")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N [VACE_DEVICE].")]


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    model: ModelOpt = None,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
    device: DeviceOpt = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker child processes [VACE_WORKERS].")
    ] = None,
    public_base_url: Annotated[
        str | None, typer.Option(help="Base of the links we hand out [VACE_PUBLIC_BASE_URL].")
    ] = None,
) -> None:
    """Run the API (and, by default, one worker child process)."""
    import uvicorn

    from vace_server.api.app import create_app

    configure_logging()
    settings = _settings(
        host=host,
        port=port,
        model=model,
        data_dir=data_dir,
        database_url=database_url,
        device=device,
        workers=workers,
        public_base_url=public_base_url,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=os.environ.get("VACE_LOG_LEVEL", "info").lower(),
        timeout_graceful_shutdown=15,
    )


@app.command()
def worker(
    model: ModelOpt = None,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run one worker in the foreground against the configured database and storage."""
    from vace_server.worker.child import run_worker

    configure_logging()
    settings = _settings(model=model, data_dir=data_dir, database_url=database_url, device=device)
    run_worker(settings, f"standalone:{os.getpid()}:{uuid.uuid4().hex[:12]}")


def _media_opt(wire: str) -> Any:
    return typer.Option(help=f"Local path or http(s) URL ({wire}).", show_default=False)


def _param_opt(wire: str, text: str = "") -> Any:
    return typer.Option(help=f"{text} ({wire})".strip(), show_default=False)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the MP4.", show_default=False)],
    function: Annotated[
        str | None,
        _param_opt(
            "input.function",
            "image_reference | video_repainting | video_edit | video_extension | "
            "video_outpainting.",
        ),
    ] = None,
    prompt: Annotated[str | None, _param_opt("input.prompt")] = None,
    negative_prompt: Annotated[str | None, _param_opt("input.negative_prompt")] = None,
    ref: Annotated[
        list[str] | None,
        typer.Option(
            help="Reference image, local path or http(s) URL; repeat for up to 3 "
            "(input.ref_images_url).",
            show_default=False,
        ),
    ] = None,
    obj_or_bg: Annotated[
        list[str] | None, _param_opt("parameters.obj_or_bg", "obj | bg, once per --ref.")
    ] = None,
    video: Annotated[str | None, _media_opt("input.video_url")] = None,
    mask: Annotated[str | None, _media_opt("input.mask_image_url")] = None,
    mask_video: Annotated[str | None, _media_opt("input.mask_video_url")] = None,
    mask_frame_id: Annotated[
        int | None, _param_opt("input.mask_frame_id", "Frame the mask refers to, from 1.")
    ] = None,
    mask_type: Annotated[
        str | None, _param_opt("parameters.mask_type", "tracking | fixed.")
    ] = None,
    expand_mode: Annotated[
        str | None, _param_opt("parameters.expand_mode", "hull | bbox | original.")
    ] = None,
    expand_ratio: Annotated[float | None, _param_opt("parameters.expand_ratio", "0..1.")] = None,
    first_frame: Annotated[str | None, _media_opt("input.first_frame_url")] = None,
    last_frame: Annotated[str | None, _media_opt("input.last_frame_url")] = None,
    first_clip: Annotated[str | None, _media_opt("input.first_clip_url")] = None,
    last_clip: Annotated[str | None, _media_opt("input.last_clip_url")] = None,
    control: Annotated[
        str | None,
        _param_opt("parameters.control_condition", "posebodyface | posebody | depth | scribble."),
    ] = None,
    strength: Annotated[float | None, _param_opt("parameters.strength", "0..1.")] = None,
    size: Annotated[
        str | None,
        _param_opt("parameters.size", "1280*720 | 720*1280 | 960*960 | 832*1088 | 1088*832."),
    ] = None,
    top_scale: Annotated[float | None, _param_opt("parameters.top_scale", "1..2.")] = None,
    bottom_scale: Annotated[float | None, _param_opt("parameters.bottom_scale", "1..2.")] = None,
    left_scale: Annotated[float | None, _param_opt("parameters.left_scale", "1..2.")] = None,
    right_scale: Annotated[float | None, _param_opt("parameters.right_scale", "1..2.")] = None,
    seed: Annotated[int | None, _param_opt("parameters.seed", "Random when absent.")] = None,
    watermark: Annotated[
        bool | None,
        typer.Option("--watermark/--no-watermark", help="(parameters.watermark, default off)"),
    ] = None,
    prompt_extend: Annotated[
        bool | None,
        typer.Option(
            "--prompt-extend/--no-prompt-extend",
            help="(parameters.prompt_extend, default on; a no-op without VACE_PROMPT_REWRITE_URL)",
        ),
    ] = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run one task locally, without a server: validated like the API, written to --out.

    Exit codes: 0 done, 1 the task failed, 2 usage error (e.g. a request the API refuses)."""
    from vace_server.oneshot import OneShotOptions, run

    options = OneShotOptions(
        out=out, function=function, prompt=prompt, negative_prompt=negative_prompt,
        refs=tuple(ref or ()), obj_or_bg=tuple(obj_or_bg or ()), video=video, mask=mask,
        mask_video=mask_video, mask_frame_id=mask_frame_id, mask_type=mask_type,
        expand_mode=expand_mode, expand_ratio=expand_ratio, first_frame=first_frame,
        last_frame=last_frame, first_clip=first_clip, last_clip=last_clip, control=control,
        strength=strength, size=size, top_scale=top_scale, bottom_scale=bottom_scale,
        left_scale=left_scale, right_scale=right_scale, seed=seed, watermark=watermark,
        prompt_extend=prompt_extend,
    )  # fmt: skip
    raise typer.Exit(run(options, _settings(model=model, device=device)))


@db_app.command("upgrade")
def db_upgrade(database_url: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Apply database migrations up to the latest revision."""
    from vace_server.tasks import db

    configure_logging()
    settings = _settings(database_url=database_url, data_dir=data_dir)
    db.upgrade(db.make_engine(settings.resolved_database_url()))
    typer.echo("database is up to date")


if __name__ == "__main__":
    app()
