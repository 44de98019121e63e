"""list index covering the retention check

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The list call counts an account's tasks in a time range that have not expired. With
`(account, created_ms)` alone, every matching row was read from the table for its
`expires_ms`; with `expires_ms` in the index the count reads the index only (and the page is
found in the same index)."""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_account_created_expires", "tasks", ["account", "created_ms", "expires_ms"]
    )
    op.drop_index("ix_tasks_account_created", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_account_created", "tasks", ["account", "created_ms"])
    op.drop_index("ix_tasks_account_created_expires", table_name="tasks")
