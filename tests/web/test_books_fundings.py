"""The bookkeeper's CareCredit fundings pages: upload the funding report, record one by hand, a
funding's charges against our payments, and the unmatched on both sides."""

import io
import re
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import CareCreditFunding, CareCreditFundingLine, CareCreditPlan, JournalEntry, Role
from billing.money import Money
from billing.services import journal
from billing.services import payments as payment_service
from tests.web.test_books_stripe import text, token

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "carecredit_funding.csv"
TODAY = date(2026, 3, 16)
# The sample's charges: authorization code, gross, day taken, plan fee (bps).
CHARGES = [("042817", "1850.00", date(2025, 3, 3), 790), ("042933", "320.00", date(2025, 3, 3), 590),
           ("117402", "4200.00", date(2025, 3, 11), 1190), ("305118", "2750.00", date(2025, 3, 20), 1590),
           ("305664", "600.00", date(2025, 3, 21), 790)]


def upload(client, content: bytes, name: str = "funding.csv", form_token: str | None = None):
    form_token = form_token or token(client.get("/books/fundings"))
    return client.post("/books/fundings", data={"form_token": form_token, "report": (io.BytesIO(content), name)})


def row(page: str, attribute: str, value: str) -> str:
    return re.search(rf'<tr {attribute}="{value}">(.*?)</tr>', page, re.S).group(1)


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(sa.select(sa.func.count()).select_from(CareCreditFunding)),
            db.session.scalar(sa.select(sa.func.count()).select_from(CareCreditFundingLine)))


@pytest.fixture
def taken(make_patient):
    """Our CareCredit payments for the sample's charges (the 12-month one at a plan fee of 11.9 %),
    and one CareCredit has not funded."""
    plans = {bps: CareCreditPlan(name=f"Plan {bps}", months=12, merchant_fee_bps=bps) for bps in (590, 790, 1190, 1590)}
    db.session.add_all(plans.values())
    db.session.flush()
    payments = {}
    for code, gross, day, bps in [*CHARGES, ("777001", "500.00", date(2025, 3, 27), 1190)]:
        details = payment_service.CareCreditInput(authorization_code=code, plan=plans[bps], account_last4="4417",
                                                  id_checked=True, receipt_signed=True)
        payments[code] = payment_service.record_carecredit(make_patient(), Money.parse(gross), details,
                                                           received_date=day, today=TODAY, confirm_overpayment=True)
    db.session.commit()
    return payments


def test_the_bookkeeper_imports_the_report_and_reads_a_short_funding(login, taken):
    client, _ = login(Role.BOOKKEEPER)
    assert 'href="/books/fundings"' in text(client.get("/books/"))
    # CareCredit took 12.9 % on the 12-month charge: the funding is $42.00 short.
    short = SAMPLE.read_bytes().replace(b"4200.00,499.80,3700.20", b"4200.00,541.80,3658.20")

    response = upload(client, short)

    assert response.status_code == 302
    page = text(client.get(response.location))
    assert ("Posted 3 fundings: CCF250304A ($2,004.97), CCF250313A ($3,658.20), CCF250325A ($2,865.35)."
            in page)
    second = row(page, "data-funding", "CCF250313A")
    for figure in ("03/13/2025", "$4,200.00", "$541.80", "$499.80", "$42.00", "$3,658.20", "1 of 1"):
        assert figure in second
    assert "$0.00" in row(page, "data-funding", "CCF250304A")
    assert "1 payment not yet funded ($500.00)" in page
    assert counts() == (3, 5)
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == Money(50000)

    funding_id = db.session.scalar(sa.select(CareCreditFunding.id).where(CareCreditFunding.reference == "CCF250313A"))
    detail = text(client.get(f"/books/fundings/{funding_id}"))
    line = row(detail, "data-line", "117402")
    for figure in (f"#{taken['117402'].id}", "03/11/2025", "$541.80", '$499.80<br><small class="muted">(11.90 %)',
                   "$42.00", '<td class="num">2</td>'):
        assert figure in line
    assert "Late" not in line


def test_the_same_form_sent_twice_imports_once_and_the_same_file_again_changes_nothing(login, taken):
    client, _ = login(Role.ADMIN)
    form_token = token(client.get("/books/fundings"))
    assert upload(client, SAMPLE.read_bytes(), form_token=form_token).status_code == 302
    again = upload(client, SAMPLE.read_bytes(), form_token=form_token)
    assert "already sent" in text(client.get(again.location))
    response = upload(client, SAMPLE.read_bytes())
    assert "3 fundings were already posted and left unchanged" in text(client.get(response.location))
    assert counts() == (3, 5)
    # The admin reads a funding's charges, without links to payment pages only staff who take money open.
    funding_id = db.session.scalar(sa.select(CareCreditFunding.id).where(CareCreditFunding.reference == "CCF250304A"))
    line = row(text(client.get(f"/books/fundings/{funding_id}")), "data-line", "042817")
    assert f"#{taken['042817'].id}" in line and "href" not in line


def test_a_malformed_file_is_refused_next_to_the_field_and_nothing_is_imported(login, taken):
    client, _ = login(Role.BOOKKEEPER)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry))
    broken = SAMPLE.read_bytes().replace(b"2750.00,437.25,2312.75", b"2750.00,437.25,2312.57")
    response = upload(client, broken)
    assert response.status_code == 200
    error = re.search(r'<small id="report-help" class="field-error">(.*?)</small>', text(response), re.S).group(1)
    assert error == "Line 5, column net_amount: 2312.57 is not gross 2750.00 less fee 437.25."
    assert counts() == (0, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)) == entries
    binary = upload(client, b"\x89PNG\r\n\x1a\n\xff\xfe\x00", name="logo.png")
    assert "This is not a text CSV file" in text(binary) and counts() == (0, 0)


def manual(client, **fields):
    data = {"form_token": token(client.get("/books/fundings/new")), "reference": "CCF250304A",
            "funded_on": "2025-03-04", "net": "2,004.97",
            "charges-0-authorization_code": "042817", "charges-0-gross": "1,850.00", "charges-0-fee": "146.15",
            "charges-1-authorization_code": "042933", "charges-1-gross": "320.00", "charges-1-fee": "18.88", **fields}
    return client.post("/books/fundings/new", data=data)


def test_a_funding_recorded_by_hand_is_matched_and_posted(login, taken):
    client, _ = login(Role.BOOKKEEPER)
    response = manual(client)
    assert response.status_code == 302
    detail = text(client.get(response.location))
    assert "Funding CCF250304A posted: 2 charges, 2 matched to payments." in detail
    assert f"#{taken['042933'].id}" in row(detail, "data-line", "042933")
    assert "Typed in" in detail
    assert counts() == (1, 2)
    assert journal.balance(journal.BANK) == Money(200497)
    assert journal.balance(journal.FINANCING_FEES) == Money(16503)


def test_a_hand_typed_funding_that_does_not_add_up_is_refused_with_what_to_fix(login, taken):
    client, _ = login(Role.BOOKKEEPER)
    response = manual(client, net="2,004.00")
    assert response.status_code == 200
    page = text(response)
    assert "The deposit $2,004.00 is not gross $2,170.00 less fees $165.03; check the amounts." in page
    assert 'value="1,850.00"' in page  # what was typed stays
    missing = text(manual(client, **{"charges-1-gross": ""}))
    assert "Charge 2: enter the gross amount charged." in missing
    assert counts() == (0, 0)


def test_the_unmatched_page_lists_both_sides(login, taken):
    client, _ = login(Role.BOOKKEEPER)
    # A charge we never recorded, funded on its own.
    assert manual(client, reference="CCF-STRAY", **{"net": "90.00", "charges-0-authorization_code": "999999",
                                                    "charges-0-gross": "100.00", "charges-0-fee": "10.00",
                                                    "charges-1-authorization_code": "", "charges-1-gross": "",
                                                    "charges-1-fee": ""}).status_code == 302
    page = text(client.get("/books/fundings/unmatched"))
    stray = row(page, "data-line", "999999")
    assert "CCF-STRAY" in stray and "$100.00" in stray and "$90.00" in stray
    assert "CareCredit payments not yet funded: 6, $10,220.00 owed" in page
    oldest = row(page, "data-payment", str(taken["042817"].id))
    assert "03/03/2025" in oldest and "$1,850.00" in oldest and "Overdue" in oldest


def test_the_front_desk_cannot_see_or_post_fundings(login, taken):
    client, _ = login(Role.FRONTDESK)
    assert client.get("/books/fundings").status_code == 403
    assert client.post("/books/fundings", data={"report": (io.BytesIO(SAMPLE.read_bytes()), "f.csv")}).status_code == 403
    assert client.get("/books/fundings/unmatched").status_code == 403
    assert counts() == (0, 0)


def test_a_payment_recorded_after_its_funding_is_matched_from_the_unmatched_page(login, make_patient):
    client, _ = login(Role.BOOKKEEPER)
    assert upload(client, SAMPLE.read_bytes()).status_code == 302
    page = client.get("/books/fundings/unmatched")
    assert "305664" in text(page) and counts() == (3, 5)
    plan = CareCreditPlan(name="6 months", months=6, merchant_fee_bps=790)
    db.session.add(plan)
    db.session.flush()
    payment = payment_service.record_carecredit(
        make_patient(), Money.parse("600.00"), payment_service.CareCreditInput("305664", plan, "9931", True, True),
        received_date=date(2025, 3, 21), today=TODAY, confirm_overpayment=True)
    db.session.commit()
    response = client.post("/books/fundings/unmatched/match", data={"form_token": token(page)})
    assert response.status_code == 302
    after = text(client.get(response.location))
    assert "1 funding line was matched to payments recorded since." in after
    assert '<tr data-line="305664">' not in after and '<tr data-line="042817">' in after
    db.session.expire_all()
    assert db.session.scalar(sa.select(CareCreditFundingLine.payment_id)
                             .where(CareCreditFundingLine.authorization_code == "305664")) == payment.id
