"""Gap-free numbers: each counter row is advanced under a row lock held until commit."""

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Counter


def next_value(key: str) -> int:
    """Advance counter `key` and return its new value (1 for a new counter).

    The UPDATE locks the row until the transaction ends, so concurrent callers wait for each
    other; a rolled-back transaction gives its number back. Numbers are consecutive and unique.
    """
    update = (sa.update(Counter).where(Counter.key == key).values(value=Counter.value + 1)
              .returning(Counter.value).execution_options(synchronize_session=False))
    value = db.session.scalar(update)
    if value is not None:
        return value
    try:
        with db.session.begin_nested():
            db.session.add(Counter(key=key, value=1))
        return 1
    except sa.exc.IntegrityError:  # another transaction created it first; it is ours after theirs
        return db.session.scalar(update)
