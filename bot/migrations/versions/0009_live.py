"""Live chat: a person takes over a conversation from the bot (issue 18).

`live_chats` holds one row per request to chat with an agent: waiting → claimed →
ended (claiming is one UPDATE … WHERE status = 'waiting', so one agent wins). A
conversation has at most one chat that is not ended (partial unique index).
`live_events` is the chat's log: messages both ways, typing, read marks and status
changes, numbered per chat by `seq` (allocated under the chat row's lock, so numbers
commit in order and a client resuming "after seq N" never skips one). `live_agents`
is the console's presence: online/away and the last heartbeat.

Revision ID: 0009
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

NOT_ENDED = sa.text("status <> 'ended'")


def upgrade() -> None:
    op.create_table(
        "live_chats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("ticket_number", sa.String(20), nullable=True),
        sa.Index("ux_live_chats_open", "conversation_id", unique=True, sqlite_where=NOT_ENDED,
                 postgresql_where=NOT_ENDED),
        sa.Index("ix_live_chats_status", "status", "requested_at"),
    )
    op.create_table(
        "live_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chat_id", sa.Integer, sa.ForeignKey("live_chats.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("author", sa.String(128), nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("chat_id", "seq", name="ux_live_events_seq"),
        sa.UniqueConstraint("chat_id", "sender", "client_id", name="ux_live_events_client_id"),
    )
    op.create_table(
        "live_agents",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("live_agents")
    op.drop_table("live_events")
    op.drop_table("live_chats")
