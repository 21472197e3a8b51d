from billing.models import InvoiceStatus, PaymentStatus
from billing.money import Money
from billing.services import balances, journal, payments
from tests.services.conftest import TODAY


def test_half_money_order_half_carecredit(make_patient, invoice_for, pay_mo, pay_cc):
    patient = make_patient()
    invoice = invoice_for(patient, "infusion", "consult")
    assert invoice.number == "INV-2026-000001"
    assert Money(invoice.total_cents) == Money.parse("450")
    pay_mo(patient, "225.00")
    assert invoice.status == InvoiceStatus.OPEN
    pay_cc(patient, "225.00")
    assert invoice.status == InvoiceStatus.PAID
    assert balances.patient_summary(patient).balance == Money.zero()
    assert journal.balance(journal.UNDEPOSITED) == Money.parse("225")
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == Money.parse("225")
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == Money.zero()


def test_refund_reopens_and_return(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    mo = pay_mo(patient, "500", confirm=True)
    assert balances.patient_credit(patient.id) == Money.parse("50")
    payments.refund_payment(mo, Money.parse("100"), "changed plans", today=TODAY, check_number="1001")
    assert mo.status == PaymentStatus.PARTIALLY_REFUNDED
    assert balances.patient_credit(patient.id) == Money.zero()
    assert balances.invoice_balance(invoice) == Money.parse("50")


def test_return(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    mo = pay_mo(patient, "500", confirm=True)
    payments.return_money_order(mo, "counterfeit", today=TODAY)
    assert mo.status == PaymentStatus.RETURNED
    assert balances.invoice_balance(invoice) == Money.parse("450")
    assert balances.patient_summary(patient).balance == Money.parse("450")
    assert journal.balance(journal.UNDEPOSITED) == Money.zero()


def test_duplicate_serial_caught_by_the_unique_key_gives_the_same_message(make_patient, invoice_for, pay_mo,
                                                                           monkeypatch):
    """Two desks entering the same money order at once: the second meets the unique key, not the check."""
    import pytest

    from billing.services import ServiceError

    patient = make_patient()
    invoice_for(patient)
    pay_mo(patient, "100", serial="31415926")
    real = payments._refuse_duplicate_serial
    calls = []

    def check_misses_once(issuer, serial):
        calls.append(serial)
        if len(calls) > 1:
            real(issuer, serial)

    monkeypatch.setattr(payments, "_refuse_duplicate_serial", check_misses_once)
    with pytest.raises(ServiceError, match="31415926 was already recorded"):
        pay_mo(patient, "100", serial="31415926")
    assert len(calls) == 2
    assert balances.invoice_balance(balances.open_invoices(patient.id)[0]) == Money.parse("350")
