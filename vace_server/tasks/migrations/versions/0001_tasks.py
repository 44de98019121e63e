"""tasks table

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("api_key_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("function", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("started_ms", sa.BigInteger),
        sa.Column("ended_ms", sa.BigInteger),
        sa.Column("expires_ms", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.String(96)),
        sa.Column("lease_until_ms", sa.BigInteger),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("output_key", sa.Text),
        sa.Column("output_seconds", sa.Float),
        sa.Column("actual_prompt", sa.Text),
        sa.Column("effective", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_ms"])
    op.create_index("ix_tasks_account_created", "tasks", ["account", "created_ms"])
    op.create_index("ix_tasks_expires", "tasks", ["expires_ms"])


def downgrade() -> None:
    op.drop_table("tasks")
