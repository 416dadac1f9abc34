"""Tickets remember the verified in-app user who opened them; the outbox gets a
dead-letter state, atomic claims and a delivery id.

- tickets.owner_user_id: the pane's verified user (its token's `sub`), so that "my
  tickets" lists only tickets opened under that identity, never ones somebody opened
  anonymously by typing the same email.
- notifications.status: pending | delivered | dead. A notification that exhausted its
  attempts is dead: no longer selected for delivery (the outbox stalled on them before)
  until staff retry it.
- notifications.claimed_until: a worker's lease on a row it is sending, so two web
  service processes never send one notification twice.
- notifications.delivery_id: a stable id the receiver can de-duplicate on.

Revision ID: 0005
Revises: 0004
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MAX_ATTEMPTS = 10  # bot/notify.py's limit when this revision was written


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("owner_user_id", sa.String(200), nullable=True))
        batch.create_index("ix_tickets_owner_user_id", ["owner_user_id"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivery_id", sa.String(36), nullable=True))
        batch.create_index("ix_notifications_due", ["status", "next_attempt_at"])
    bind = op.get_bind()
    table = sa.table(
        "notifications", sa.column("id"), sa.column("status"), sa.column("delivered_at"), sa.column("attempts"),
        sa.column("delivery_id"),
    )
    bind.execute(table.update().where(table.c.delivered_at.isnot(None)).values(status="delivered"))
    bind.execute(
        table.update().where(table.c.delivered_at.is_(None), table.c.attempts >= MAX_ATTEMPTS).values(status="dead")
    )
    for (row_id,) in bind.execute(sa.select(table.c.id)).fetchall():
        bind.execute(table.update().where(table.c.id == row_id).values(delivery_id=str(uuid.uuid4())))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_due")
        for column in ("delivery_id", "claimed_until", "status"):
            batch.drop_column(column)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_owner_user_id")
        batch.drop_column("owner_user_id")
