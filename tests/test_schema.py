"""The tables the code queries (bot/store.py, bot/live_store.py) match what the Alembic
migrations build, on SQLite and on PostgreSQL: a column, index or constraint added on one
side only fails here (issue 17, the drift test)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot import live_store, store as store_module


def declared() -> sa.MetaData:
    """Every table the code declares, in one MetaData."""
    combined = sa.MetaData()
    for metadata in (store_module.metadata, live_store.metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def differences(connection, metadata: sa.MetaData) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_declared_tables_match_the_migrations(store):
    """`store` is a database migrated to head (SQLite, and PostgreSQL when configured)."""
    async with store.engine.connect() as connection:
        diff = await connection.run_sync(differences, declared())
    assert diff == []


async def test_the_check_sees_a_table_declared_but_never_migrated(store):
    """The drift test can fail: a declared index the migrations lack is reported."""
    metadata = declared()
    sa.Index("ix_tickets_product_only_in_code", metadata.tables["tickets"].c.product)
    async with store.engine.connect() as connection:
        diff = await connection.run_sync(differences, metadata)
    assert [d[0] for d in diff] == ["add_index"]
