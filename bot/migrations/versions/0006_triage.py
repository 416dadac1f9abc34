"""The severity the assistant proposed, and the one the customer submitted, on tickets.

`severity` stays the ticket's current severity (staff may change it); with these two
the report tells how often a proposal was kept, changed by the customer or by staff.
Older tickets keep NULL in both (unknown).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("proposed_severity", sa.String(16), nullable=True))
        batch.add_column(sa.Column("submitted_severity", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("submitted_severity")
        batch.drop_column("proposed_severity")
