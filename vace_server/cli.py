"""`vace-server` command line: serve, worker, ray-workers, generate (one task, no server),
db upgrade."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from vace_server.logging_setup import configure_logging
from vace_server.settings import Settings, describe_invalid

if TYPE_CHECKING:
    from vace_server.api.summary import KeySource

app = typer.Typer(
    help="Self-hosted, DashScope-compatible Wan VACE video API.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings(*, loads_model: bool = False, logs: bool = True, **overrides: Any) -> Settings:
    """Environment (VACE_*) first, then the flags that were actually given; logging is
    configured from them (VACE_LOG_LEVEL, VACE_LOG_FORMAT) unless `logs` is false.

    A setting that can never work stops the command here, with one line on stderr (exit 2),
    before any server or worker process starts; with `loads_model` (the model is loaded on
    this machine), so does a model folder that is not there."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        _refuse(describe_invalid(exc))
    if loads_model:
        _check_model_folder(settings)
    if logs:  # `generate` has its own display (oneshot.run)
        configure_logging(settings.logging.log_level, settings.logging.log_format)
    return settings


def _check_model_folder(settings: Settings) -> None:
    if problem := settings.model_folder_problem():
        _refuse(problem)


def _check_port_free(host: str, port: int) -> None:
    """Stops `serve` with one line when its address is taken, before the database is opened
    and worker children start loading a model only to be stopped again. (uvicorn would say
    the same after start-up, in a log line among others.)"""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        _stop(f"cannot bind to {host}:{port}: {exc} (check --host / VACE_HOST)")
    family, kind, proto, _canon, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is not taken for busy
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _stop(
                    f"port {port} on {host} is already in use (another vace-server?): stop "
                    "that process or choose another port with --port / VACE_PORT"
                )
            _stop(f"cannot bind to {host}:{port}: {exc.strerror} (check --host / VACE_HOST)")


def _print_summary(settings: Settings, keys: KeySource | None) -> None:
    from vace_server.api.summary import summary_lines

    typer.echo("\n".join(summary_lines(settings, keys)))


def _stop(reason: str) -> NoReturn:
    typer.echo(f"vace-server: {reason}", err=True)
    raise typer.Exit(2)


def _refuse(reason: str) -> NoReturn:
    typer.echo(f"vace-server: invalid settings: {reason}", err=True)
    raise typer.Exit(2)


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
    from vace_server.api.http_protocol import uvicorn_options

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
    if settings.queue.workers > 0:  # worker children load the model on this machine
        _check_model_folder(settings)
        if settings.engine.gpus_per_task > 1:  # embedded children run one device each
            _refuse(
                f"VACE_GPUS_PER_TASK={settings.engine.gpus_per_task}: serve's worker children "
                "run one device each; run `vace-server serve --workers 0` beside "
                "`vace-server worker --gpus-per-task N` (docs/deploy.md)"
            )
    _check_port_free(settings.http.host, settings.http.port)
    application = create_app(settings)
    _print_summary(settings, application.state.ctx.key_source)
    uvicorn.run(
        application,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.logging.log_level.lower(),
        timeout_graceful_shutdown=15,
        **uvicorn_options(),  # JSON log lines and JSON 400s from uvicorn itself
    )


@app.command()
def worker(
    model: ModelOpt = None,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
    device: DeviceOpt = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="CUDA devices, e.g. 0 or 0,1: one worker process per device, each seeing only "
            "its own (CUDA_VISIBLE_DEVICES). Default: one worker, devices as the environment has.",
            show_default=False,
        ),
    ] = None,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate/--no-migrate",
            help="Upgrade the database schema first. Normally `vace-server db upgrade` or an API "
            "replica (which migrates on start) does it.",
        ),
    ] = False,
    served_model: Annotated[
        str | None,
        typer.Option(
            help="The VACE_MODELS name these workers serve (claim only its tasks, load its "
            "weights and settings) [VACE_SERVED_MODEL].",
            show_default=False,
        ),
    ] = None,
    gpus_per_task: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run each task across this many devices (context parallel, one rank process "
            "each): --gpus 0,1,2,3 --gpus-per-task 4 is one group, 8 GPUs by 4 are two "
            "[VACE_GPUS_PER_TASK].",
            show_default=False,
        ),
    ] = None,
    worker_id: Annotated[str | None, typer.Option(hidden=True)] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
    group_rank: Annotated[int | None, typer.Option(hidden=True)] = None,
    group_port: Annotated[int | None, typer.Option(hidden=True)] = None,
    settings_file: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run worker(s) in the foreground against the configured database and storage.

    SIGTERM/SIGINT: the task in hand may finish within VACE_STOP_GRACE_SECONDS, else it goes
    back to the queue (its attempt not counted); then exit 0 (a second signal: at once).
    Exit 2 when the database schema is missing or outdated, or the database is unreachable."""
    from vace_server.worker import standalone

    try:
        devices = standalone.parse_gpus(gpus)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--gpus") from exc
    flags: dict[str, Any] = {
        "model": model,
        "data_dir": data_dir,
        "database_url": database_url,
        "device": device,
        "served_model": served_model,
        "gpus_per_task": gpus_per_task,
    }
    if settings_file is not None:  # a group rank of a Ray actor: its settings, not the env's
        from vace_server.settings import from_worker_payload

        settings = from_worker_payload(settings_file.read_text())
        configure_logging(settings.logging.log_level, settings.logging.log_format)
    else:
        settings = _settings(loads_model=True, **flags)
    per_task = settings.engine.gpus_per_task
    if per_task > 1 and group_rank is not None and group_port is not None:
        from vace_server.engine.parallel import GroupAddress
        from vace_server.worker.group import run_rank

        address = GroupAddress("127.0.0.1", group_port, group_rank, per_task)
        raise typer.Exit(run_rank(settings, address, worker_id=worker_id, parent_pid=parent_pid))
    if migrate:
        from vace_server.tasks import db

        engine = db.make_engine(settings.resolved_database_url())
        db.upgrade(engine)
        engine.dispose()
    env = {f"VACE_{k.upper()}": str(v) for k, v in flags.items() if v is not None}
    if per_task > 1:
        from vace_server.worker.group import GroupWorkers, split_groups

        try:  # no --gpus: one group over the devices the environment shows (or the CPU)
            groups = split_groups(devices, per_task) if devices else [[]]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--gpus-per-task") from exc
        raise typer.Exit(GroupWorkers(settings, groups, per_task, env).run())
    if len(devices) <= 1:
        gpu = devices[0] if devices else None
        code = standalone.run_one(
            settings, gpu=gpu, migrate=False, worker_id=worker_id, parent_pid=parent_pid
        )
        raise typer.Exit(code)
    raise typer.Exit(standalone.PerGpuWorkers(settings, devices, env).run())


@app.command("ray-workers")
def ray_workers(
    address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS",
            help="Ray cluster: the head's host:port when run on a node of the cluster, else "
            "ray://head:10001 (Ray Client) [RAY_ADDRESS].",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[int, typer.Option(min=0, help="Worker actors to keep.")] = 1,
    gpus_per_worker: Annotated[
        float, typer.Option(min=0, help="GPUs each actor reserves (0 = CPU only).")
    ] = 1.0,
    cpus_per_worker: Annotated[float, typer.Option(min=0, help="CPUs each actor reserves.")] = 1.0,
    gpus_per_task: Annotated[
        int,
        typer.Option(
            min=1,
            help="Each replica a worker group: a placement group of this many GPUs on one "
            "node, each task run across all of them (--gpus-per-worker is then unused; "
            "--cpus-per-worker counts per rank).",
        ),
    ] = 1,
    namespace: Annotated[str, typer.Option(help="Ray namespace of the actors.")] = "vace",
    name_prefix: Annotated[str, typer.Option(help="Actors are named PREFIX-0, PREFIX-1, …")] = (
        "vace-worker"
    ),
    max_restarts: Annotated[
        int, typer.Option(min=-1, help="Restarts Ray gives a dead actor (-1 = always).")
    ] = -1,
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every actor to load its model.")
    ] = 600.0,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop and remove the actors instead.")
    ] = False,
    stop_timeout: Annotated[
        float, typer.Option(help="With --stop: seconds a busy actor may take to finish its task.")
    ] = 300.0,
    list_: Annotated[bool, typer.Option("--list", help="Show the running actors instead.")] = False,
    model: ModelOpt = None,
    data_dir: DataOpt = None,
    database_url: DbOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Place worker actors on a Ray cluster (needs Ray: the `ray` extra of vace-server).

    Creates detached actors PREFIX-0 … PREFIX-(N-1) (keeping those that exist, removing
    higher-numbered ones), waits until each has loaded its model, prints one line per actor
    (name, worker id, host, pid, model@device) and exits; Ray restarts an actor whose process
    dies. `--stop` stops them after their current task and removes them."""
    import json

    settings = _settings(model=model, data_dir=data_dir, database_url=database_url, device=device)
    if not address:
        raise typer.BadParameter("give --address or set RAY_ADDRESS", param_hint="--address")
    from vace_server.worker import ray_actors

    try:
        import ray  # noqa: F401
    except ImportError:
        typer.echo("vace-server: Ray is not installed: pip install 'vace-server[ray]'", err=True)
        raise typer.Exit(2) from None
    where = {"namespace": namespace, "prefix": name_prefix}
    if stop:
        names = ray_actors.stop_workers(address, timeout=stop_timeout, **where)
        typer.echo(f"stopped {len(names)} actor(s): {' '.join(names)}".rstrip())
        return
    if list_:
        for entry in ray_actors.list_workers(address, **where):
            typer.echo(json.dumps(entry))
        return
    placement = ray_actors.Placement(
        replicas=replicas,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
        max_restarts=max_restarts,
        gpus_per_task=gpus_per_task,
        **where,
    )
    try:
        ready = ray_actors.start_workers(address, settings, placement, ready_timeout=ready_timeout)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"vace-server ray-workers: {exc}", err=True)
        raise typer.Exit(1 if isinstance(exc, TimeoutError) else 2) from exc
    for r in ready:
        line = [r["name"], r["worker_id"], r["hostname"], str(r["pid"])]
        typer.echo("\t".join([*line, f"{r['model']}@{r['device']}"]))


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
    raise typer.Exit(
        run(options, _settings(loads_model=True, logs=False, model=model, device=device))
    )


@db_app.command("upgrade")
def db_upgrade(database_url: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Apply database migrations up to the latest revision."""
    from vace_server.tasks import db

    settings = _settings(database_url=database_url, data_dir=data_dir)
    db.upgrade(db.make_engine(settings.resolved_database_url()))
    typer.echo("database is up to date")


if __name__ == "__main__":
    app()
