"""Issuing invoices (numbered, copied from the charges, never changed) and voiding them."""

from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AdjustmentKind, AuditEvent, ChargeStatus, InvoiceLine, InvoiceStatus, JournalEntry
from billing.money import Money
from billing.services import balances, journal
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, close_month, refused, unbalanced_entries


def usd(text: str) -> Money:
    return Money.parse(text)


def line_values(invoice_id: int) -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        sa.select(InvoiceLine.charge_id, InvoiceLine.date_of_service, InvoiceLine.description, InvoiceLine.code,
                  InvoiceLine.units, InvoiceLine.unit_price_cents, InvoiceLine.discount_cents,
                  InvoiceLine.amount_cents)
        .where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id))]


# --- issue -----------------------------------------------------------------------------------


def test_issue_copies_the_open_charges_and_posts_nothing(make_patient, charge, catalog):
    patient = make_patient()
    first = charge(patient, "infusion", day=date(2026, 3, 2))
    second = charge(patient, "addl", day=date(2026, 3, 1), units=2, discount=usd("25"))
    free = charge(patient, "consult", day=date(2026, 3, 2))
    entries_before = db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry))

    invoice = invoice_service.issue_invoice(patient, today=TODAY)

    assert invoice.number == "INV-2026-000001"
    assert (invoice.status, invoice.issue_date, invoice.total_cents) == (InvoiceStatus.OPEN, TODAY, 72500)
    assert invoice.issued_at is not None
    assert line_values(invoice.id) == [  # oldest date of service first
        (second.id, date(2026, 3, 1), "Infusion, each additional hour", "96366", 2, 15000, 2500, 27500),
        (first.id, date(2026, 3, 2), "Ketamine infusion, first hour", "96365", 1, 45000, 0, 45000),
        (free.id, date(2026, 3, 2), "Consultation", "99204", 1, 0, 0, 0),
    ]
    assert [line.charge_id for line in invoice.lines] == [second.id, first.id, free.id]  # readable at once
    for posted in (first, second, free):
        assert (posted.status, posted.invoice_id) == (ChargeStatus.INVOICED, invoice.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)) == entries_before
    summary = balances.patient_summary(patient)
    assert (summary.due, summary.uninvoiced, summary.balance) == (usd("725"), Money.zero(), usd("725"))
    assert balances.open_invoices(patient.id) == [invoice]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "invoice.issue"))
    assert event.changes == {"number": "INV-2026-000001", "total": "725.00",
                             "charges": [second.id, first.id, free.id]}


def test_issue_only_the_chosen_charges(make_patient, charge):
    patient = make_patient()
    first, second = charge(patient, "infusion"), charge(patient, "addl")
    invoice = invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[second.id])
    assert [line.charge_id for line in invoice.lines] == [second.id]
    assert invoice.total_cents == 15000
    assert first.status == ChargeStatus.OPEN
    summary = balances.patient_summary(patient)
    assert (summary.due, summary.uninvoiced) == (usd("150"), usd("450"))


def test_a_package_line_shows_the_package(make_patient, catalog):
    patient = make_patient()
    charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    [line] = invoice.lines
    assert (line.description, line.code, line.amount_cents) == ("Six-infusion series", "", 240000)


def test_an_invoice_of_nothing_but_free_charges_is_paid_at_once(make_patient, charge):
    patient = make_patient()
    charge(patient, "consult")
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    assert (invoice.status, invoice.total_cents) == (InvoiceStatus.PAID, 0)
    assert balances.invoice_balance(invoice) == Money.zero()


def test_nothing_to_invoice_is_refused(make_patient, charge):
    patient = make_patient()
    with refused(match="no open charges"):
        invoice_service.issue_invoice(patient, today=TODAY)
    posted = charge(patient, "infusion")
    charge_service.void_charge(posted, "Wrong patient", today=TODAY)
    with refused(match="no open charges"):
        invoice_service.issue_invoice(patient, today=TODAY)
    with refused(match="no open charges"):
        invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[])


def test_chosen_charges_that_are_not_open_or_not_the_patients_are_refused(make_patient, charge):
    patient, other = make_patient(), make_patient()
    mine, theirs = charge(patient, "infusion"), charge(other, "infusion")
    with refused(match="already invoiced or voided"):
        invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[mine.id, theirs.id])
    invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[mine.id])
    charge(patient, "addl")
    with refused(match="already invoiced or voided"):
        invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[mine.id])
    with refused(match="already invoiced or voided"):
        invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[999_999])


def test_the_same_charge_chosen_twice_is_invoiced_once(make_patient, charge):
    patient = make_patient()
    posted = charge(patient, "infusion")
    invoice = invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[posted.id, posted.id])
    assert invoice.total_cents == 45000
    assert len(invoice.lines) == 1


# --- issued invoices never change ---------------------------------------------------------------------


def test_issued_lines_stay_the_same_after_the_charge_is_voided_later(make_patient, charge):
    patient = make_patient()
    posted = charge(patient, "addl", units=2, discount=usd("10"))
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    number, total, lines = invoice.number, invoice.total_cents, line_values(invoice.id)

    invoice_service.void_invoice(invoice, "Wrong units", today=TODAY)
    charge_service.void_charge(posted, "Wrong units", today=TODAY)
    corrected = charge(patient, "addl", units=1)
    reissued = invoice_service.issue_invoice(patient, today=TODAY)
    db.session.expire_all()

    assert (invoice.number, invoice.total_cents, invoice.status) == (number, total, InvoiceStatus.VOID)
    assert line_values(invoice.id) == lines
    assert posted.status == ChargeStatus.VOID
    assert [line.charge_id for line in reissued.lines] == [corrected.id]
    assert reissued.number == "INV-2026-000002"


def test_the_database_refuses_to_rewrite_an_invoice_line(make_patient, invoice_for):
    invoice = invoice_for(make_patient())
    lines = line_values(invoice.id)
    with pytest.raises(sa.exc.DBAPIError, match="cannot be changed or deleted"):
        with db.session.begin_nested():
            db.session.execute(sa.update(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                               .values(amount_cents=1))
    db.session.expire_all()
    assert line_values(invoice.id) == lines


# --- void -----------------------------------------------------------------------------------------


def test_void_turns_payments_into_credit_reverses_adjustments_and_reopens_the_charges(
        make_patient, charge, pay_mo, pay_cc):
    patient = make_patient()
    first, second = charge(patient, "infusion"), charge(patient, "addl")
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, usd("50"), "Long wait", today=TODAY)
    pay_mo(patient, "300")
    pay_cc(patient, "250")
    assert invoice.status == InvoiceStatus.PAID

    invoice_service.void_invoice(invoice, " Billed the wrong patient ", today=TODAY)

    assert (invoice.status, invoice.void_reason, invoice.voided_on) == (
        InvoiceStatus.VOID, "Billed the wrong patient", TODAY)
    for posted in (first, second):
        assert (posted.status, posted.invoice_id) == (ChargeStatus.OPEN, None)
    assert balances.invoice_paid(invoice.id) == Money.zero()
    assert balances.invoice_balance(invoice) == Money.zero()
    assert balances.patient_credit(patient.id) == usd("550")
    assert balances.patient_receivable(patient.id) == usd("600")
    assert journal.balance(journal.DISCOUNTS) == Money.zero()
    summary = balances.patient_summary(patient)
    assert (summary.due, summary.uninvoiced, summary.credit, summary.balance) == (
        Money.zero(), usd("600"), usd("550"), usd("50"))
    [entry] = journal.entries_for(invoice)
    assert {(line.account.code, line.amount_cents) for line in entry.lines} == {
        ("1100", 60000), ("2100", -55000), ("4910", -5000)}
    assert unbalanced_entries() == []

    # Re-invoiced, the credit pays the new invoice.
    reissued = invoice_service.issue_invoice(patient, today=TODAY)
    assert payment_service.apply_credit(patient, reissued, None, today=TODAY) == usd("550")
    assert balances.invoice_balance(reissued) == usd("50")


def test_void_of_an_unpaid_invoice_posts_nothing(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry))
    invoice_service.void_invoice(invoice, "Duplicate", today=TODAY)
    assert invoice.status == InvoiceStatus.VOID
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)) == entries
    assert balances.patient_summary(patient).uninvoiced == usd("450")


def test_void_refusals(make_patient, invoice_for):
    invoice = invoice_for(make_patient())
    with refused("reason"):
        invoice_service.void_invoice(invoice, "  ", today=TODAY)
    invoice_service.void_invoice(invoice, "Duplicate", today=TODAY)
    with refused(match="already void"):
        invoice_service.void_invoice(invoice, "Again", today=TODAY)


def test_void_of_a_paid_invoice_when_today_is_in_a_closed_month_changes_nothing(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    pay_mo(patient, "450")
    close_month(TODAY)
    with refused(match="closed"):
        invoice_service.void_invoice(invoice, "Duplicate", today=TODAY)
    assert invoice.status == InvoiceStatus.PAID


def test_a_void_after_a_refund_moves_only_what_is_still_applied(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = pay_mo(patient, "450")
    payment_service.refund_payment(payment, usd("100"), "Partial", today=TODAY, check_number="9001")
    assert balances.invoice_balance(invoice) == usd("100")
    invoice_service.void_invoice(invoice, "Duplicate", today=TODAY)
    assert balances.patient_credit(patient.id) == usd("350")
    assert balances.patient_summary(patient).balance == usd("100")
    assert unbalanced_entries() == []
