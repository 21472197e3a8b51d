"""The patient portal through its routes: sign-in links, privacy (another patient's ids answer 404),
refused links, audited document views, no diagnoses on screen, separate and idle-limited sessions."""

import re
import time
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from billing.extensions import db
from billing.models import (
    AuditEvent, CardChannel, DocumentLink, DocumentRequest, DocumentRequestStatus, OutboxMessage, Patient, Payment,
    PaymentMethod, PortalSignInToken, Receipt, Role,
)
from billing.models.types import utcnow
from billing.money import Money
from billing.services import card_payments, portal
from billing.services.estimates import create_estimate, mark_given
from billing.services.settings import get_settings
from tests.services.conftest import TODAY

DIAGNOSES = ("F33.2", "G90.512")
LINK = re.compile(r"http://localhost(/portal/sign-in/[A-Za-z0-9_-]+)")
DOCUMENT_LINK = re.compile(r"http://localhost(/portal/d/[A-Za-z0-9_-]+)")


@pytest.fixture(autouse=True)
def clinic(app):
    settings = get_settings()
    settings.name = "Lakeside Infusion Clinic"
    settings.npi, settings.tin = "1245319599", "12-3456789"
    db.session.flush()
    return settings


@pytest.fixture
def record(make_patient, charge, invoice_for, pay_mo, catalog):
    """Factory: a patient with a paid invoice (and its receipt), an open invoice, a given estimate,
    diagnoses on their charges and portal access at `email`."""

    def make(email: str, last: str) -> dict:
        patient = make_patient(last=last, email=email)
        charge(patient, "infusion", icd10_codes=[DIAGNOSES[0]], provider=catalog["provider"])
        paid = invoice_for(patient, "consult")  # the infusion above is on this invoice too
        payment = pay_mo(patient, "450.00", apply_to=[(paid.id, Money.parse("450.00"))])
        charge(patient, "infusion", icd10_codes=[DIAGNOSES[1]], provider=catalog["provider"])
        open_invoice = invoice_for(patient, "consult")
        estimate = create_estimate(patient, [(catalog["infusion"], 6)], period_start=TODAY,
                                   period_end=TODAY + timedelta(days=180), provider=catalog["provider"],
                                   icd10_codes=[DIAGNOSES[0]], today=TODAY)
        mark_given(estimate, "in person", datetime.now().astimezone())
        card_payment = card_payments.start(patient, Money.parse("450.00"), invoice=open_invoice,
                                           channel=CardChannel.PORTAL, today=TODAY)
        db.session.commit()
        receipt = db.session.scalars(sa.select(Receipt).where(Receipt.payment_id == payment.id)).one()
        return {"patient": patient, "invoice": paid, "open_invoice": open_invoice, "receipt": receipt,
                "estimate": estimate, "card_payment": card_payment}

    return make


def invite(patient: Patient, email: str) -> str:
    """Portal access for the patient; returns the path of the first sign-in link."""
    tokens = []
    portal.invite(patient, email, link_for=lambda t: tokens.append(t) or t, minutes=15)
    db.session.commit()
    return f"/portal/sign-in/{tokens[0]}"


def signed_in(app, patient: Patient, email: str) -> FlaskClient:
    client = app.test_client()
    response = client.post(invite(patient, email))
    assert response.status_code == 302 and response.location.endswith("/portal/"), response.data
    return client


@pytest.fixture
def two(app, record):
    """Two patients with records; the first is signed in to the portal."""
    mine, theirs = record("sam@example.test", "Rivera"), record("alex@example.test", "Okafor")
    theirs["link_path"] = invite(theirs["patient"], "alex@example.test")
    mine["client"] = signed_in(app, mine["patient"], "sam@example.test")
    return mine, theirs


def _outbox_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))


# --- asking for a link --------------------------------------------------------------------------------


def test_unknown_email_gets_the_same_answer_as_a_known_one(client, record):
    sam = record("sam@example.test", "Rivera")
    invite(sam["patient"], "sam@example.test")
    before = _outbox_count()
    known = client.post("/portal/sign-in", data={"email": "Sam@Example.test"})
    after_known = _outbox_count()
    unknown = client.post("/portal/sign-in", data={"email": "nobody@example.test"})
    after_unknown = _outbox_count()
    assert (known.status_code, unknown.status_code) == (200, 200)
    assert known.get_data() == unknown.get_data()
    assert "Check your email" in known.get_data(as_text=True)
    assert (after_known - before, after_unknown - after_known) == (1, 0)
    message = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert message.to_address == "sam@example.test" and LINK.search(message.body_text)


def test_sign_in_requests_are_rate_limited_per_ip(client):
    statuses = [client.post("/portal/sign-in", data={"email": f"p{i}@example.test"}).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]


def test_sign_in_requests_are_rate_limited_per_email_across_ips(client):
    statuses = [client.post("/portal/sign-in", data={"email": "sam@example.test"},
                            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]
    other = client.post("/portal/sign-in", data={"email": "alex@example.test"}, environ_base={"REMOTE_ADDR": "10.0.1.1"})
    assert other.status_code == 200


# --- using the link ------------------------------------------------------------------------------------------


def test_the_emailed_link_signs_in_once(app, record):
    sam = record("sam@example.test", "Rivera")
    path = invite(sam["patient"], "sam@example.test")
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200 and "Sign in" in page.get_data(as_text=True)
    assert client.post(path).status_code == 302
    home = client.get("/portal/").get_data(as_text=True)
    assert "Amount you owe" in home and "$450.00" in home

    again = app.test_client()
    for response in (again.get(path), again.post(path)):
        assert response.status_code == 400 and "cannot be used" in response.get_data(as_text=True)
    assert again.get("/portal/").status_code == 302


def test_expired_tampered_or_revoked_sign_in_links_are_refused(app, record):
    sam = record("sam@example.test", "Rivera")
    path = invite(sam["patient"], "sam@example.test")
    client = app.test_client()
    tampered = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert client.post(tampered).status_code == 400
    assert client.get(tampered).status_code == 400
    db.session.execute(sa.update(PortalSignInToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get(path).status_code == 400 and client.post(path).status_code == 400
    fresh = invite(sam["patient"], "sam@example.test")
    portal.revoke(sam["patient"])
    db.session.commit()
    assert client.post(fresh).status_code == 400
    assert client.get("/portal/").status_code == 302


# --- privacy ------------------------------------------------------------------------------------------------


def _portal_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("portal.")]


ID_OF = {"invoice_id": "open_invoice", "receipt_id": "receipt", "estimate_id": "estimate",
         "payment_id": "card_payment"}


def test_every_portal_route_answers_404_for_another_patients_ids(app, two):
    mine, theirs = two
    client = mine["client"]
    checked = []
    for rule in _portal_rules(app):
        ids = [arg for arg in rule.arguments if arg != "token"]
        if not ids:
            continue
        assert set(ids) <= ID_OF.keys(), f"{rule.rule}: teach this test which record {ids} names"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for owner in (theirs, mine):
                url = rule.build({arg: owner[ID_OF[arg]].id for arg in ids}, append_unknown=False)[1]
                response = client.open(url, method=method)
                if owner is theirs:
                    assert response.status_code == 404, f"{method} {url} -> {response.status_code}"
                    assert theirs["patient"].last_name not in response.get_data(as_text=True)
                else:  # the same route with my own ids works (a page, a PDF, or a redirect onwards)
                    assert response.status_code in (200, 302), f"{method} {url} -> {response.status_code}"
            url = rule.build({arg: 999_999 for arg in ids}, append_unknown=False)[1]
            assert client.open(url, method=method).status_code == 404
            checked.append(rule.endpoint)
    assert set(checked) >= {"portal.invoice", "portal.invoice_download", "portal.receipt_download",
                            "portal.estimate", "portal.estimate_download", "portal.pay_invoice", "portal.card",
                            "portal.card_status", "portal.card_retry", "portal.card_another", "portal.paid"}


def test_a_draft_invoice_or_estimate_is_not_shown(app, two, catalog):
    mine, _ = two
    draft = create_estimate(mine["patient"], [(catalog["infusion"], 1)], period_start=TODAY, period_end=TODAY,
                            today=TODAY)
    db.session.commit()
    assert mine["client"].get(f"/portal/estimates/{draft.id}").status_code == 404


def test_the_portal_pages_list_only_my_documents(two):
    mine, theirs = two
    page = mine["client"].get("/portal/documents").get_data(as_text=True)
    for doc in ("invoice", "open_invoice"):
        assert mine[doc].number in page and theirs[doc].number not in page
    assert mine["receipt"].number in page and theirs["receipt"].number not in page
    assert mine["estimate"].number in page and theirs["estimate"].number not in page


def test_no_diagnosis_codes_on_portal_screens_but_the_estimate(two):
    mine, _ = two
    client = mine["client"]
    for url in ("/portal/", "/portal/documents", f"/portal/invoices/{mine['invoice'].id}",
                f"/portal/invoices/{mine['open_invoice'].id}"):
        page = client.get(url).get_data(as_text=True)
        assert not [code for code in DIAGNOSES if code in page], url
        assert not re.search(r"\b[A-TV-Z][0-9]{2}\.[0-9A-Z]{1,4}\b", page), url
    assert DIAGNOSES[0] in client.get(f"/portal/estimates/{mine['estimate'].id}").get_data(as_text=True)


# --- documents -------------------------------------------------------------------------------------------------


def _views(entity_type: str | None = None) -> list[AuditEvent]:
    query = sa.select(AuditEvent).where(AuditEvent.action == "portal.document_view")
    if entity_type:
        query = query.where(AuditEvent.entity_type == entity_type)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def test_every_document_view_is_audited(two):
    mine, _ = two
    client, patient = mine["client"], mine["patient"]
    downloads = [f"/portal/receipts/{mine['receipt'].id}.pdf", f"/portal/invoices/{mine['invoice'].id}.pdf",
                 f"/portal/estimates/{mine['estimate'].id}.pdf",
                 f"/portal/statement.pdf?start={TODAY.replace(day=1)}&end={TODAY}"]
    for url in downloads:
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "application/pdf", url
        assert response.headers["Cache-Control"] == "no-store"
    client.get(f"/portal/invoices/{mine['invoice'].id}")
    client.get(f"/portal/estimates/{mine['estimate'].id}")
    views = _views()
    assert [v.entity_type for v in views] == ["Receipt", "Invoice", "GoodFaithEstimate", "Patient", "Invoice",
                                             "GoodFaithEstimate"]
    assert {v.actor_label for v in views} == {f"patient {patient.account_number}"}
    assert views[0].changes["renders_as_issued"] is True and views[3].changes["kind"] == "statement"


def test_a_superbill_is_produced_at_once_or_goes_to_the_front_desk(two, login, charge, catalog, clinic):
    mine, _ = two
    client = mine["client"]
    period = {"start": TODAY.replace(day=1).isoformat(), "end": TODAY.isoformat()}
    response = client.post("/portal/documents/request", data={"kind": "superbill", **period})
    assert response.status_code == 302 and "/portal/superbill.pdf" in response.location
    pdf = client.get(response.location)
    assert pdf.mimetype == "application/pdf" and _views("Patient")[-1].changes["kind"] == "superbill"

    clinic.npi = ""  # the clinic's NPI went missing: the front desk must finish it
    db.session.commit()
    response = client.post("/portal/documents/request", data={"kind": "superbill", **period})
    assert response.location.endswith("/portal/documents")
    request = db.session.scalars(sa.select(DocumentRequest)).one()
    assert request.status == DocumentRequestStatus.OPEN and "NPI" in request.reason
    assert "Waiting for the front desk" in client.get("/portal/documents").get_data(as_text=True)

    desk, _ = login(Role.FRONTDESK)
    queue = desk.get("/patients/portal-requests").get_data(as_text=True)
    assert mine["patient"].full_name in queue and "NPI" in queue
    assert desk.post(f"/patients/portal-requests/{request.id}/done").status_code == 302
    db.session.refresh(request)
    assert request.status == DocumentRequestStatus.DONE


def test_a_statement_request_and_bad_dates(two):
    mine, _ = two
    client = mine["client"]
    response = client.post("/portal/documents/request", data={"kind": "statement", "start": "2026-03-01",
                                                               "end": "2026-03-31"})
    assert "/portal/statement.pdf?start=2026-03-01&end=2026-03-31" in response.location
    reversed_ = client.post("/portal/documents/request", data={"kind": "statement", "start": "2026-03-31",
                                                                "end": "2026-03-01"}, follow_redirects=True)
    assert "on or before the last date" in reversed_.get_data(as_text=True)
    nothing = client.post("/portal/documents/request", data={"kind": "superbill", "start": "2025-01-01",
                                                              "end": "2025-01-31"}, follow_redirects=True)
    assert "no visits between" in nothing.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DocumentRequest)) == 0


# --- document links in emails ------------------------------------------------------------------------------------


def test_an_emailed_receipt_carries_a_link_that_opens_only_that_pdf(app, two, login):
    mine, _ = two
    desk, _ = login(Role.FRONTDESK)
    assert desk.post(f"/payments/receipts/{mine['receipt'].id}/email").status_code == 302
    message = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt")).one()
    path = DOCUMENT_LINK.search(message.body_text).group(1)
    assert "30 days" in message.body_text

    anyone = app.test_client()
    response = anyone.get(path)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert mine["receipt"].number in response.headers["Content-Disposition"]
    view = _views("Receipt")[-1]
    assert view.changes["via"] == "email link" and view.actor_label == "anonymous"
    assert anyone.get("/portal/").status_code == 302  # the link signs nobody in

    for bad in (path[:-2], path + "x", "/portal/d/" + "A" * 43):
        assert anyone.get(bad).status_code == 404
    link = db.session.scalars(sa.select(DocumentLink)).one()
    assert desk.post(f"/patients/document-links/{link.id}/revoke").status_code == 302
    refused = anyone.get(path)
    assert refused.status_code == 404 and "expired or was withdrawn" in refused.get_data(as_text=True)


def test_an_expired_document_link_is_refused(app, two, login):
    mine, _ = two
    desk, _ = login(Role.FRONTDESK)
    desk.post(f"/invoices/{mine['invoice'].id}/email")
    message = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "invoice")).one()
    path = DOCUMENT_LINK.search(message.body_text).group(1)
    assert app.test_client().get(path).status_code == 200
    db.session.execute(sa.update(DocumentLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert app.test_client().get(path).status_code == 404


# --- sessions -----------------------------------------------------------------------------------------------------


def test_staff_and_patient_sessions_are_separate(app, two, login):
    mine, theirs = two
    desk, _ = login(Role.FRONTDESK)
    assert desk.get("/portal/").status_code == 403
    assert desk.get(f"/portal/receipts/{mine['receipt'].id}.pdf").status_code == 403
    patient_client = mine["client"]
    response = patient_client.get("/frontdesk/")
    assert response.status_code == 302 and "/login" in response.location
    assert patient_client.get(f"/patients/{mine['patient'].id}").status_code == 302

    # Following a sign-in link in a browser signed in as staff ends the staff session.
    assert desk.post(theirs["link_path"]).status_code == 302
    assert desk.get("/portal/").status_code == 200
    assert "/login" in desk.get("/frontdesk/").location


def test_a_portal_session_ends_after_the_idle_limit(app, two):
    mine, _ = two
    client = mine["client"]
    idle = app.config["PORTAL_IDLE_MINUTES"] * 60
    with client.session_transaction() as session:
        session["portal_last_seen"] = int(time.time()) - idle + 60
    assert client.get("/portal/").status_code == 200
    with client.session_transaction() as session:
        session["portal_last_seen"] = int(time.time()) - idle - 1
    response = client.get("/portal/")
    assert response.status_code == 302 and response.location.endswith("/portal/sign-in")
    assert "without activity" in client.get(response.location).get_data(as_text=True)
    assert client.get("/portal/").status_code == 302


def test_signing_out_and_revoking_end_the_session(app, two, login):
    mine, _ = two
    client = mine["client"]
    assert client.post("/portal/sign-out").status_code == 302
    assert client.get("/portal/").status_code == 302
    client = signed_in(app, mine["patient"], "sam@example.test")
    desk, _ = login(Role.FRONTDESK)
    assert desk.post(f"/patients/{mine['patient'].id}/portal/revoke").status_code == 302
    assert client.get("/portal/").status_code == 302


# --- the front desk ------------------------------------------------------------------------------------------------


def test_front_desk_invites_from_the_patient_page(login, make_patient):
    desk, _ = login(Role.FRONTDESK)
    patient = make_patient(email="lee@example.test")
    other = make_patient(first="Kim")
    db.session.commit()
    page = desk.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "No portal access yet" in page and 'value="lee@example.test"' in page
    before = _outbox_count()
    response = desk.post(f"/patients/{patient.id}/portal/invite", data={"email": "lee@example.test"},
                         follow_redirects=True)
    assert "is invited" in response.get_data(as_text=True) and _outbox_count() == before + 1
    assert "Can sign in with" in desk.get(f"/patients/{patient.id}").get_data(as_text=True)
    taken = desk.post(f"/patients/{other.id}/portal/invite", data={"email": "LEE@example.test"},
                      follow_redirects=True)
    assert "Another patient" in taken.get_data(as_text=True)
    bookkeeper, _ = login(Role.BOOKKEEPER)
    assert bookkeeper.post(f"/patients/{patient.id}/portal/invite", data={"email": "x@example.test"}).status_code == 403


def test_the_invitation_email_signs_in(app, login, make_patient):
    desk, _ = login(Role.FRONTDESK)
    patient = make_patient(email="lee@example.test")
    db.session.commit()
    desk.post(f"/patients/{patient.id}/portal/invite", data={"email": "lee@example.test"})
    message = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "portal_sign_in")).one()
    assert "invites you" in message.body_text
    client = app.test_client()
    assert client.post(LINK.search(message.body_text).group(1)).status_code == 302
    assert "Hello, Sam" in client.get("/portal/").get_data(as_text=True)


def test_the_home_page_in_plain_words(two):
    mine, _ = two
    page = mine["client"].get("/portal/").get_data(as_text=True)
    assert "Amount you owe" in page and "A/R" not in page and "receivable" not in page.lower()
    assert mine["open_invoice"].number in page and mine["receipt"].number in page
    assert date.today().year  # the page rendered with the clinic's letterhead name
    assert "Lakeside Infusion Clinic" in page


# --- paying by card ---------------------------------------------------------------------------------------------


def _form_token(html: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)


def test_paying_the_balance_by_card_ends_on_the_receipt(stripe_app, localstripe, app, record):
    from tests.web.test_card_payments_web import JS_ORIGIN, _settle

    sam = record("sam@example.test", "Rivera")
    client = signed_in(app, sam["patient"], "sam@example.test")
    home = client.get("/portal/").get_data(as_text=True)
    assert 'href="/portal/pay"' in home
    page = client.get("/portal/pay").get_data(as_text=True)
    assert "Pay $450.00 by card" in page and "Everything you owe" in page
    token = _form_token(page)
    response = client.post("/portal/pay", data={"form_token": token})
    assert re.fullmatch(r"/portal/payments/\d+/card", response.location)
    again = client.post("/portal/pay", data={"form_token": token})  # the same form twice: one payment
    assert again.location == response.location
    payment = db.session.get(Payment, int(response.location.split("/")[3]))
    assert payment.card.channel == CardChannel.PORTAL and payment.card.invoice_id is None
    assert payment.amount_cents == 45000 and payment.patient_id == sam["patient"].id

    card = client.get(response.location)
    assert card.status_code == 200 and "data-client-secret" in card.get_data(as_text=True)
    assert JS_ORIGIN in card.headers["Content-Security-Policy"]
    status_url = response.location.replace("/card", "/status")
    assert client.get(status_url).json["status"] == "pending"  # the browser alone never settles it

    _settle(localstripe, payment)
    receipt_url = client.get(status_url).json["receipt_url"]
    assert receipt_url == f"/portal/payments/{payment.id}"
    paid = client.get(receipt_url).get_data(as_text=True)
    receipt = db.session.scalars(sa.select(Receipt).where(Receipt.payment_id == payment.id)).one()
    assert "Thank you" in paid and receipt.number in paid and "Visa card ending 4242" in paid
    pdf = client.get(f"/portal/receipts/{receipt.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert 'data-figure="due">$0.00' in client.get("/portal/").get_data(as_text=True)
    assert client.get(response.location).location.endswith(receipt_url)  # the card page is done


def test_paying_one_chosen_invoice(stripe_app, localstripe, app, record):
    sam = record("sam@example.test", "Rivera")
    client = signed_in(app, sam["patient"], "sam@example.test")
    invoice = sam["open_invoice"]
    url = f"/portal/invoices/{invoice.id}/pay"
    assert url in client.get(f"/portal/invoices/{invoice.id}").get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    response = client.post(url, data={"form_token": _form_token(page)})
    # The payment the fixture left pending for this invoice and amount is resumed, not doubled.
    assert response.location == f"/portal/payments/{sam['card_payment'].id}/card"
    paid_invoice = sam["invoice"]
    assert "Nothing is due on this invoice" in client.get(f"/portal/invoices/{paid_invoice.id}/pay").get_data(
        as_text=True)
    assert client.post(f"/portal/invoices/{paid_invoice.id}/pay", data={"form_token": "x" * 20}).status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
        Payment.method == PaymentMethod.CARD)) == 1
