"""Portal access, sign-in links and document links: single use, expiry, hashed storage, revocation."""

import hashlib
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    DocumentLink, DocumentRequestKind, DocumentRequestStatus, OutboxMessage, PortalAccount, PortalSignInToken,
)
from billing.models.types import utcnow
from billing.services import ServiceError
from billing.services import portal


class Links:
    """A link_for that keeps every token it is given (as the email would carry it)."""

    def __init__(self):
        self.tokens: list[str] = []

    def __call__(self, token: str) -> str:
        self.tokens.append(token)
        return f"https://clinic.test/portal/sign-in/{token}"


@pytest.fixture
def links() -> Links:
    return Links()


@pytest.fixture
def invited(make_patient, links):
    patient = make_patient(email="sam@example.test")
    portal.invite(patient, "Sam@Example.test ", link_for=links, minutes=15)
    return patient


def test_invite_stores_the_address_and_only_a_hash_of_the_emailed_token(invited, links):
    account = portal.account_of(invited)
    assert account.email == "sam@example.test" and account.active
    [token] = links.tokens
    stored = db.session.scalars(sa.select(PortalSignInToken.token_sha256)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in stored[0]
    message = db.session.scalars(sa.select(OutboxMessage)).one()
    assert message.to_address == "sam@example.test" and message.kind == "portal_sign_in"
    assert f"/portal/sign-in/{token}" in message.body_text and "15 minutes" in message.body_text


def test_a_sign_in_link_works_once(invited, links):
    [token] = links.tokens
    assert portal.check_sign_in(token)
    account = portal.redeem_sign_in(token, ip="127.0.0.1")
    assert account.patient_id == invited.id and account.last_sign_in_at is not None
    assert not portal.check_sign_in(token)
    with pytest.raises(ServiceError, match="cannot be used"):
        portal.redeem_sign_in(token, ip="127.0.0.1")


def test_an_expired_altered_or_unknown_link_is_refused_alike(invited, links):
    [token] = links.tokens
    later = utcnow() + timedelta(minutes=15, seconds=1)
    messages = set()
    for attempt, now in ((token, later), (token[:-1] + ("A" if token[-1] != "A" else "B"), None), ("x" * 43, None)):
        with pytest.raises(ServiceError) as refused:
            portal.redeem_sign_in(attempt, ip=None, now=now)
        messages.add(refused.value.message)
    assert messages == {portal.REFUSED_SIGN_IN}
    assert portal.redeem_sign_in(token, ip=None, now=utcnow() + timedelta(minutes=14))  # still good before then


def test_unknown_or_revoked_email_gets_no_link(invited, links, make_patient):
    portal.request_sign_in("nobody@example.test", link_for=links, minutes=15, ip=None)
    assert len(links.tokens) == 1  # the invitation's only
    portal.request_sign_in(" SAM@example.test", link_for=links, minutes=15, ip=None)
    assert len(links.tokens) == 2
    portal.revoke(invited)
    portal.request_sign_in("sam@example.test", link_for=links, minutes=15, ip=None)
    assert len(links.tokens) == 2


def test_revoking_stops_unused_links_and_moves_the_session_epoch_on(invited, links):
    account = portal.account_of(invited)
    epoch = account.session_epoch
    assert portal.active_account(account.id, epoch) is account
    portal.revoke(invited)
    assert portal.active_account(account.id, epoch) is None
    with pytest.raises(ServiceError):
        portal.redeem_sign_in(links.tokens[0], ip=None)
    with pytest.raises(ServiceError, match="no portal access"):
        portal.revoke(invited)
    portal.invite(invited, "sam@example.test", link_for=links, minutes=15)
    assert account.active and account.session_epoch == epoch + 1
    with pytest.raises(ServiceError):  # sent before the revoke: never works again
        portal.redeem_sign_in(links.tokens[0], ip=None)
    assert portal.redeem_sign_in(links.tokens[-1], ip=None) is account


def test_one_address_belongs_to_one_patient(invited, make_patient, links):
    other = make_patient(first="Alex")
    with pytest.raises(ServiceError) as refused:
        portal.invite(other, "SAM@example.test", link_for=links, minutes=15)
    assert refused.value.field == "email"
    with pytest.raises(ServiceError):
        portal.invite(other, "not an address", link_for=links, minutes=15)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalAccount)) == 1


def test_document_links_open_one_document_until_they_expire_or_are_revoked(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    token = portal.create_document_link(invoice, days=30)
    link = db.session.scalars(sa.select(DocumentLink)).one()
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest() and link.patient_id == patient.id
    opened_link, document = portal.open_document_link(token)
    assert opened_link is link and document is invoice
    # It can be opened again: a document link is not single-use, it expires.
    assert portal.open_document_link(token)[1] is invoice
    with pytest.raises(ServiceError, match="expired or was withdrawn"):
        portal.open_document_link(token, now=utcnow() + timedelta(days=30, seconds=1))
    with pytest.raises(ServiceError):
        portal.open_document_link(token[:-2])
    portal.revoke_document_link(link)
    with pytest.raises(ServiceError):
        portal.open_document_link(token)
    with pytest.raises(ServiceError, match="already withdrawn"):
        portal.revoke_document_link(link)


def test_a_document_request_is_queued_once_and_closed_once(make_patient, create_user):
    patient = make_patient()
    first = portal.request_document(patient, DocumentRequestKind.SUPERBILL, date(2026, 3, 1), date(2026, 3, 31),
                                    reason="Missing: a diagnosis")
    again = portal.request_document(patient, DocumentRequestKind.SUPERBILL, date(2026, 3, 1), date(2026, 3, 31),
                                    reason="Missing: a diagnosis")
    assert again is first and portal.open_requests() == [first]
    portal.close_request(first, create_user())
    assert first.status == DocumentRequestStatus.DONE and portal.open_requests() == []
    with pytest.raises(ServiceError):
        portal.close_request(first, create_user())
