"""First response, resolution time and the customer's satisfaction rating on tickets.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("csat_rating", sa.Integer, nullable=True))
        batch.add_column(sa.Column("csat_comment", sa.Text, nullable=True))
        batch.add_column(sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for column in ("csat_at", "csat_comment", "csat_rating", "resolved_at", "first_response_at"):
            batch.drop_column(column)
