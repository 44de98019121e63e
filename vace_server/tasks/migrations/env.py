"""Alembic environment: runs on the connection handed over by `vace_server.tasks.db.upgrade`,
or on `sqlalchemy.url` when invoked through the alembic CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from vace_server.tasks.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)
