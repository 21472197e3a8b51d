"""The only code that creates or changes rows. Functions flush; views commit."""

from typing import Any

import sqlalchemy as sa

from billing.extensions import db


class ServiceError(Exception):
    """A business rule refused the request; `field` names the form field to show it next to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def primary_key(obj: Any) -> Any:
    """The primary key of a model instance, flushing it first if it is new. Read from the identity,
    so an instance expired by the last commit is not reloaded just for its id."""
    identity = sa.inspect(obj).identity
    if identity is None:
        db.session.flush()
        identity = sa.inspect(obj).identity
    return identity[0]


def advisory_lock(namespace: int, key: Any, *, shared: bool = False) -> None:
    """PostgreSQL: take the advisory lock (namespace, key) until the transaction ends, in a statement of
    its own, so that the statements after it see what a transaction that held it committed. `key`: an
    int or an SQL expression of one. SQLite serialises writers by itself: nothing to do."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    lock = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    db.session.execute(sa.select(lock(namespace, key)))
