"""Gap-free counters and the invoice numbers built on them."""

from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import Counter
from billing.services import ServiceError, numbering
from billing.services import invoices as invoice_service
from billing.services import settings as settings_service
from tests.services.conftest import TODAY


def test_a_new_counter_starts_at_one_and_counts_up(app):
    assert numbering.next_value("test:a") == 1
    assert numbering.next_value("test:a") == 2
    assert numbering.next_value("test:a") == 3
    assert db.session.get(Counter, "test:a").value == 3


def test_counters_are_independent(app):
    assert [numbering.next_value("test:a") for _ in range(3)] == [1, 2, 3]
    assert numbering.next_value("test:b") == 1
    assert numbering.next_value("test:a") == 4


def test_a_rolled_back_number_is_given_back(app):
    assert numbering.next_value("test:a") == 1
    savepoint = db.session.begin_nested()
    assert numbering.next_value("test:a") == 2
    savepoint.rollback()
    assert numbering.next_value("test:a") == 2


def test_a_counter_created_in_a_rolled_back_transaction_starts_again_at_one(app):
    savepoint = db.session.begin_nested()
    assert numbering.next_value("test:new") == 1
    savepoint.rollback()
    assert db.session.scalar(sa.select(Counter).where(Counter.key == "test:new")) is None
    assert numbering.next_value("test:new") == 1


def test_format_number():
    assert numbering.format_number("INV", 2026, 1) == "INV-2026-000001"
    assert numbering.format_number("INV", 2026, 123) == "INV-2026-000123"
    assert numbering.format_number("ACME", 2027, 1_234_567) == "ACME-2027-1234567"


def test_invoice_numbers_are_consecutive_per_year_and_restart_in_a_new_year(make_patient, charge):
    patient = make_patient()

    def issue(today: date) -> str:
        charge(patient, "addl", day=date(2026, 3, 1))
        return invoice_service.issue_invoice(patient, today=today).number

    assert [issue(TODAY) for _ in range(3)] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert issue(date(2027, 1, 2)) == "INV-2027-000001"
    assert issue(date(2026, 12, 31)) == "INV-2026-000004"  # 2026 goes on where it stopped
    assert issue(date(2027, 1, 3)) == "INV-2027-000002"


def test_invoice_numbers_use_the_clinic_prefix(make_patient, invoice_for):
    settings_service.update_settings({"invoice_prefix": "LKS"})
    assert invoice_for(make_patient()).number == "LKS-2026-000001"


def test_a_refused_invoice_does_not_use_a_number(make_patient, invoice_for):
    patient = make_patient()
    assert invoice_for(patient).number == "INV-2026-000001"
    with pytest.raises(ServiceError):
        invoice_service.issue_invoice(patient, today=TODAY)  # nothing left to invoice
    assert invoice_for(patient).number == "INV-2026-000002"


def test_patient_account_numbers_are_consecutive(make_patient):
    numbers = [make_patient().account_number for _ in range(3)]
    first = int(numbers[0][1:])
    assert numbers == [f"P{n:06d}" for n in range(first, first + 3)]
