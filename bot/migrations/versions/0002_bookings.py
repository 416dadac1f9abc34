"""Bookings of a call with the technical team, and which booking a notification is about.

A booking's status is one of:

* ``pending_calendar``: the slot is held, but the customer has no Meet link yet (the
  calendar event is being created, or the calendar was unreachable and the team was
  told to create it by hand);
* ``booked``: the slot is held and the Meet link is known (``meet_url``);
* ``cancelled``: the slot is free again (``cancelled_at`` says when). A moved booking is
  cancelled and a new row holds the new slot.

``booked`` and ``pending_calendar`` are the active states. The partial unique indexes
make the database refuse a second active booking of the same start instant (slots are
on a fixed grid, so the same start is the same slot) and a second active booking for
one ticket, whatever the application does and however many conversations race.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status <> 'cancelled'")


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("meet_url", sa.String(500), nullable=True),
        sa.Column("calendar_event_id", sa.String(1024), nullable=True),
        sa.Column("customer_tz", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('booked', 'pending_calendar', 'cancelled')", name="ck_bookings_status"),
        sa.CheckConstraint("starts_at < ends_at", name="ck_bookings_order"),
    )
    op.create_index(
        "ux_bookings_active_slot", "bookings", ["starts_at"], unique=True,
        sqlite_where=ACTIVE, postgresql_where=ACTIVE,
    )
    op.create_index(
        "ux_bookings_active_ticket", "bookings", ["ticket_id"], unique=True,
        sqlite_where=ACTIVE, postgresql_where=ACTIVE,
    )
    op.create_index("ix_bookings_ticket", "bookings", ["ticket_id"])
    # No foreign key: bookings are only deleted with their ticket, which deletes the
    # notification too (and SQLite cannot add a column with a constraint in place).
    op.add_column("notifications", sa.Column("booking_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("booking_id")
    op.drop_index("ix_bookings_ticket", table_name="bookings")
    op.drop_index("ux_bookings_active_ticket", table_name="bookings")
    op.drop_index("ux_bookings_active_slot", table_name="bookings")
    op.drop_table("bookings")
