"""Two of Rasa's stores, fixed for servers that share a database and a Redis.

This module runs inside the Rasa server (Python 3.10 environment, `.venv-rasa`, with
the project on PYTHONPATH); it imports nothing from the rest of the project.
endpoints.yml names these classes as the stores' `type`.

`ReconnectingSQLTrackerStore` is Rasa's SQL tracker store with `pool_pre_ping`. Rasa's
own keeps pooled connections without checking them, so after a PostgreSQL restart the
first message a server handles meets a dead connection. Rasa does not fail then: its
FailSafeTrackerStore answers from an empty conversation, and the customer's half-filled
form is forgotten for that turn ("yes" at the summary got "I didn't understand").

`AtomicRedisLockStore` is Rasa's Redis lock store with its read-modify-write steps made
atomic. Rasa 3.6's `RedisLockStore` issues a ticket by reading the conversation's lock
from Redis, adding the ticket and writing it back, with nothing in between to stop
another Rasa server doing the same. Two servers that take messages of one conversation
at the same moment can both read "no lock", both write a lock holding only their own
ticket 0, and then both process at once: one message's events overwrite the other's
(tests/test_scale_out.py saw 7 of 8 messages of a burst stored). Within one server the
race cannot happen (no `await` between the read and the write), which is why it only
shows with replicas.

Here every such step runs in a Redis transaction (WATCH the key, read, MULTI, write,
EXEC; retried if another server changed the key meanwhile), so tickets are issued,
served and cleaned up one at a time across servers. Ticket numbers, lifetimes and
waiting are Rasa's own (`TicketLock`).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional, Tuple, TypeVar

import sqlalchemy as sa
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")


class ReconnectingSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` that tests a pooled connection before using it.

    On SQLite (the single-machine default) it also keeps its connections in a pool, where
    SQLAlchemy 1.4 would open and close one per turn, and uses write-ahead logging with
    `synchronous=NORMAL`: a turn's commit no longer waits for the disk (it is durable
    when the process dies, and at the next checkpoint against power loss). Measured with
    py-spy under load, the commit and the connection churn were 30% of Rasa's time per
    turn. The tickets are in a separate database with its own settings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        if url.get_backend_name() == "sqlite":
            self.engine = sa.create_engine(
                url, poolclass=sa.pool.QueuePool, pool_size=5, pool_pre_ping=True,
                connect_args={"check_same_thread": False},  # pooled: one connection, one user at a time
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")  # a data-protection erase overwrites the rows
    cursor.close()


class AtomicRedisLockStore(RedisLockStore):
    """`RedisLockStore` whose ticket bookkeeping is atomic across Rasa servers."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        # Rasa builds a custom lock store from its endpoint config; take the same keys
        # (url = host, port, password, db, key_prefix, ...) as the built-in one.
        super().__init__(host=endpoint_config.url or "localhost", **endpoint_config.kwargs)

    def _transact(self, conversation_id: str, change: Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], T]]) -> T:
        """Apply `change` to the stored lock atomically; a returned None lock deletes it."""
        key = self.key_prefix + conversation_id

        def attempt(pipe: Any) -> T:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            new_lock, value = change(lock)
            pipe.multi()
            if new_lock is None:
                pipe.delete(key)
            else:
                pipe.set(key, new_lock.dumps())
            return value

        return self.red.transaction(attempt, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = 60) -> int:
        def change(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._transact(conversation_id, change)
        except Exception as exc:  # Rasa's contract: any failure here is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: str) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish this ticket and delete the lock if nobody waits, in one step."""

        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._transact(conversation_id, change)
