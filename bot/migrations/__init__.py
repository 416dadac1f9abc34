"""Schema migrations (Alembic), run with `python -m bot migrate` or `upgrade(url)`.

Alembic is driven from code (no alembic.ini): the script folder is this package and
the URL is passed in, so the same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from bot.store import async_url, make_engine  # noqa: F401  (env.py imports make_engine)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    # Alembic's config is an INI parser: escape % in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (creates the SQLite file if needed)."""
    command.upgrade(alembic_config(url), revision)
