"""`vace-server` command line: serve, worker, db upgrade."""

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
