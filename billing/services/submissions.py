"""One-time form tokens: a double click or a resent form does its work only once."""

import sqlalchemy as sa

from billing.extensions import db
from billing.models import FormSubmission


class AlreadySubmitted(Exception):
    """This form was sent before; `result_url` shows what it did."""

    def __init__(self, result_url: str):
        super().__init__(result_url)
        self.result_url = result_url


def spend(token: str) -> FormSubmission:
    """Claim a form's token before doing its work, in the same transaction.

    Raises AlreadySubmitted when the token was spent by a committed request (a concurrent twin
    waits on the unique key until the first commits, then gets this too). The caller rolls back.
    """
    previous = db.session.get(FormSubmission, token)
    if previous is not None:
        raise AlreadySubmitted(previous.result_url)
    submission = FormSubmission(token=token)
    try:
        with db.session.begin_nested():
            db.session.add(submission)
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise AlreadySubmitted(db.session.get(FormSubmission, token).result_url) from None
    return submission
