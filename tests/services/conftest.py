"""Factories for the ledger: a fee schedule, patients, charges, invoices and payments."""

import re
from contextlib import contextmanager
from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AccountingPeriod, Adjustment, Allocation, AuditEvent, CareCreditDetails, CareCreditPlan, Charge, Counter,
    Invoice, InvoiceLine, JournalEntry, JournalLine, MoneyOrderDetails, MoneyOrderIssuer, Package, PackagePurchase,
    Patient, Payment, PeriodStatus, Provider, Refund, Service, ServiceCategory,
)
from billing.money import Money
from billing.services import ServiceError
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service

TODAY = date(2026, 3, 16)


@pytest.fixture
def catalog(app):
    """A small ketamine-clinic fee schedule, a provider and two CareCredit plans."""
    services = {
        "consult": Service(code="CONSULT", name="Consultation", cpt_code="99204", category=ServiceCategory.VISIT,
                           default_price_cents=0),
        "infusion": Service(code="KET-INF", name="Ketamine infusion, first hour", cpt_code="96365",
                            category=ServiceCategory.INFUSION, default_price_cents=45000),
        "addl": Service(code="KET-ADD", name="Infusion, each additional hour", cpt_code="96366",
                        category=ServiceCategory.INFUSION, default_price_cents=15000, unit="hour"),
    }
    db.session.add_all(services.values())
    db.session.flush()
    package = Package(code="SERIES6", name="Six-infusion series", service_id=services["infusion"].id, units=6,
                      price_cents=240000)
    provider = Provider(name="Dana Whitfield", credentials="MD", npi="1234567893")
    plans = {"12mo": CareCreditPlan(name="12 months no interest", months=12, merchant_fee_bps=990),
             "24mo": CareCreditPlan(name="24 months reduced APR", months=24, merchant_fee_bps=1490)}
    db.session.add_all([package, provider, *plans.values()])
    db.session.flush()
    return {**services, "package": package, "provider": provider, **plans}


@pytest.fixture
def make_patient(app):
    counter = iter(range(1, 10_000))

    def make(last: str = "Rivera", first: str = "Sam", dob: date = date(1980, 5, 17), **extra):
        n = next(counter)
        return patient_service.create_patient(
            {"first_name": first, "last_name": f"{last}" if n == 1 else f"{last}{n}", "date_of_birth": dob, **extra},
            today=TODAY)

    return make


@pytest.fixture
def charge(catalog):
    def make(patient, service="infusion", *, day: date = TODAY, **kw):
        return charge_service.post_charge(
            patient, charge_service.ChargeInput(service=catalog[service], date_of_service=day, **kw), today=TODAY)

    return make


@pytest.fixture
def invoice_for(charge):
    """Post charges for the patient (default: one $450 infusion) and issue the invoice."""

    def make(patient, *services: str, day: date = TODAY):
        for service in services or ("infusion",):
            charge(patient, service, day=day)
        return invoice_service.issue_invoice(patient, today=day)

    return make


_serials = iter(range(10_000_000, 99_999_999, 7))


def money_order(issuer=MoneyOrderIssuer.USPS, serial: str | None = None, purchaser: str = "Sam Rivera"):
    return payment_service.MoneyOrderInput(
        issuer=issuer, serial=serial or str(next(_serials)), purchaser=purchaser,
        id_seen=True, signed_in_front_of_staff=True, security_features_checked=True)


@pytest.fixture
def pay_mo(app):
    def pay(patient, dollars: str, *, confirm: bool = False, apply_to=None, **mo):
        return payment_service.record_money_order(
            patient, Money.parse(dollars), money_order(**mo), received_date=TODAY, today=TODAY,
            apply_to=apply_to, confirm_overpayment=confirm)

    return pay


@pytest.fixture
def pay_cc(catalog):
    def pay(patient, dollars: str, *, plan: str = "12mo", confirm: bool = False, apply_to=None):
        details = payment_service.CareCreditInput(authorization_code="A1B2C3", plan=catalog[plan],
                                                  account_last4="4321", id_checked=True, receipt_signed=True)
        return payment_service.record_carecredit(
            patient, Money.parse(dollars), details, received_date=TODAY, today=TODAY, apply_to=apply_to,
            confirm_overpayment=confirm)

    return pay


# --- refusals leave everything as it was ---------------------------------------------------------

ANY_FIELD = object()


def close_month(day: date, reason: str = "Month closed by the bookkeeper") -> AccountingPeriod:
    """Close the month `day` falls in (as the bookkeeper's close would)."""
    period = AccountingPeriod(month=day.replace(day=1), status=PeriodStatus.CLOSED, reason=reason)
    db.session.add(period)
    db.session.flush()
    return period


def _rows(*columns, order_by) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(sa.select(*columns).order_by(*order_by))]


def ledger_snapshot() -> dict:
    """Everything a money operation can change: row counts, every account's balance per patient,
    and the status columns. Querying flushes, so unflushed edits a refused call left behind show up."""
    counts = {
        model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Patient, Charge, PackagePurchase, Invoice, InvoiceLine, Payment, MoneyOrderDetails,
                      CareCreditDetails, Allocation, Refund, Adjustment, JournalEntry, JournalLine, AuditEvent,
                      AccountingPeriod)
    }
    return {
        "counts": counts,
        "journal": [tuple(r) for r in db.session.execute(
            sa.select(JournalLine.account_id, JournalLine.patient_id, sa.func.sum(JournalLine.amount_cents))
            .group_by(JournalLine.account_id, JournalLine.patient_id)
            .order_by(JournalLine.account_id, JournalLine.patient_id))],
        "allocated": [tuple(r) for r in db.session.execute(
            sa.select(Allocation.invoice_id, sa.func.sum(Allocation.amount_cents))
            .group_by(Allocation.invoice_id).order_by(Allocation.invoice_id))],
        "patients": _rows(Patient.id, Patient.account_number, Patient.first_name, Patient.last_name,
                          Patient.search_name, Patient.date_of_birth, Patient.email, Patient.phone, Patient.state,
                          Patient.archived, order_by=[Patient.id]),
        "charges": _rows(Charge.id, Charge.status, Charge.invoice_id, Charge.amount_cents, Charge.void_reason,
                         order_by=[Charge.id]),
        "invoices": _rows(Invoice.id, Invoice.status, Invoice.number, Invoice.total_cents, Invoice.void_reason,
                          order_by=[Invoice.id]),
        "payments": _rows(Payment.id, Payment.status, Payment.amount_cents, order_by=[Payment.id]),
        "purchases": _rows(PackagePurchase.id, PackagePurchase.units_refunded, order_by=[PackagePurchase.id]),
        "counters": _rows(Counter.key, Counter.value, order_by=[Counter.key]),
    }


@contextmanager
def refused(field=ANY_FIELD, match: str | None = None):
    """Expect the block to raise ServiceError (naming `field`, with a message matching `match`)
    and to leave the ledger exactly as it was."""
    before = ledger_snapshot()
    with pytest.raises(ServiceError) as info:
        yield info
    if field is not ANY_FIELD:
        assert info.value.field == field, info.value.message
    if match is not None:
        assert re.search(match, info.value.message), info.value.message
    assert ledger_snapshot() == before, f"refused call changed the ledger: {info.value.message}"


def unbalanced_entries() -> list[int]:
    """Ids of journal entries whose lines do not sum to zero (there must never be any)."""
    return list(db.session.scalars(
        sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
        .having(sa.func.sum(JournalLine.amount_cents) != 0)
    ))
