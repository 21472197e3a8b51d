"""Payments: money orders and CareCredit, allocation, credit, refunds, returns and adjustments."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AdjustmentKind, Allocation, AuditEvent, InvoiceStatus, MoneyOrderIssuer, Payment, PaymentMethod, PaymentStatus,
    RefundKind,
)
from billing.money import Money, MoneyError
from billing.services import balances, journal
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, close_month, money_order, refused, unbalanced_entries


def usd(text: str) -> Money:
    return Money.parse(text)


def entry_lines(source) -> list[set[tuple[str, int, int | None]]]:
    return [{(line.account.code, line.amount_cents, line.patient_id) for line in entry.lines}
            for entry in journal.entries_for(source)]


def allocations_of(payment: Payment) -> list[tuple[int, int]]:
    return [tuple(r) for r in db.session.execute(
        sa.select(Allocation.invoice_id, Allocation.amount_cents).where(Allocation.payment_id == payment.id)
        .order_by(Allocation.id))]


def record_mo(patient, amount: Money, details=None, *, received_date=TODAY, today=TODAY, **kw) -> Payment:
    return payment_service.record_money_order(patient, amount, details or money_order(), received_date=received_date,
                                              today=today, **kw)


def cc_details(catalog, **overrides) -> payment_service.CareCreditInput:
    values = dict(authorization_code="a1b2c3", plan=catalog["12mo"], account_last4="4321", id_checked=True,
                  receipt_signed=True)
    return payment_service.CareCreditInput(**values | overrides)


def record_cc(patient, amount: Money, details, *, received_date=TODAY, today=TODAY, **kw) -> Payment:
    return payment_service.record_carecredit(patient, amount, details, received_date=received_date, today=today, **kw)


# --- amounts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["450.001", "-450", "-0.01", "0", "0.00", "$0", ""])
def test_money_parse_refuses_amounts_a_payment_cannot_have(text):
    with pytest.raises(MoneyError):
        Money.parse(text, allow_zero=False)


@pytest.mark.parametrize("amount", [Money.zero(), Money(-1), Money(-45000)])
def test_a_payment_of_zero_or_less_is_refused(make_patient, invoice_for, catalog, amount):
    patient = make_patient()
    invoice_for(patient)
    with refused("amount"):
        record_mo(patient, amount, confirm_overpayment=True)
    with refused("amount"):
        record_cc(patient, amount, cc_details(catalog), confirm_overpayment=True)


# --- money orders ------------------------------------------------------------------------------------


def test_a_money_order_pays_the_oldest_invoices_first_and_posts_undeposited_funds(make_patient, invoice_for):
    patient = make_patient()
    older = invoice_for(patient, "infusion", day=date(2026, 3, 2))
    newer = invoice_for(patient, "addl", day=date(2026, 3, 9))

    payment = record_mo(patient, usd("500.00"), money_order(serial="1234-5678 90", purchaser="  Sam Rivera "))

    assert (payment.method, payment.status, payment.amount_cents, payment.received_date) == (
        PaymentMethod.MONEY_ORDER, PaymentStatus.SUCCEEDED, 50000, TODAY)
    details = payment.money_order
    assert (details.issuer, details.serial, details.purchaser) == (MoneyOrderIssuer.USPS, "1234567890", "Sam Rivera")
    assert details.id_seen and details.signed_in_front_of_staff and details.security_features_checked
    assert allocations_of(payment) == [(older.id, 45000), (newer.id, 5000)]
    assert (older.status, newer.status) == (InvoiceStatus.PAID, InvoiceStatus.OPEN)
    assert balances.invoice_balance(newer) == usd("100")
    assert entry_lines(payment) == [{("1010", 50000, None), ("1100", -50000, patient.id)}]
    assert journal.balance(journal.UNDEPOSITED) == usd("500")
    assert balances.patient_summary(patient).balance == usd("100")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "payment.money_order"))
    assert event.changes == {"amount": "500.00", "issuer": "usps", "serial": "1234567890"}


def test_an_overpayment_without_confirmation_is_refused(make_patient, invoice_for):
    patient = make_patient()
    invoice_for(patient)
    with refused("confirm_overpayment", match=r"\$50\.00 more"):
        record_mo(patient, usd("500"))


def test_a_confirmed_overpayment_is_kept_as_credit(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = record_mo(patient, usd("500"), confirm_overpayment=True)
    assert invoice.status == InvoiceStatus.PAID
    assert balances.patient_credit(patient.id) == usd("50")
    assert entry_lines(payment) == [{("1010", 50000, None), ("1100", -45000, patient.id), ("2100", -5000, patient.id)}]
    assert balances.patient_summary(patient).balance == -usd("50")


def test_a_payment_with_nothing_due_is_all_credit_once_confirmed(make_patient):
    patient = make_patient()
    with refused("confirm_overpayment"):
        record_mo(patient, usd("100"))
    payment = record_mo(patient, usd("100"), confirm_overpayment=True)
    assert allocations_of(payment) == []
    assert balances.patient_credit(patient.id) == usd("100")


def test_an_uninvoiced_charge_is_not_paid_by_a_payment(make_patient, charge):
    patient = make_patient()
    charge(patient, "infusion")
    with refused("confirm_overpayment"):  # nothing invoiced yet: all of it would be credit
        record_mo(patient, usd("450"))


@pytest.mark.parametrize(("details", "field"), [
    ({"serial": "12345"}, "serial"),
    ({"serial": "123456789012345678901"}, "serial"),
    ({"serial": "1234*5678"}, "serial"),
    ({"purchaser": "   "}, "purchaser"),
])
def test_money_order_detail_refusals(make_patient, invoice_for, details, field):
    patient = make_patient()
    invoice_for(patient)
    with refused(field):
        record_mo(patient, usd("450"), money_order(**details))


@pytest.mark.parametrize("unchecked", ["id_seen", "signed_in_front_of_staff", "security_features_checked"])
def test_the_verification_checklist_must_be_complete(make_patient, invoice_for, unchecked):
    patient = make_patient()
    invoice_for(patient)
    details = money_order()
    setattr(details, unchecked, False)
    with refused("verification"):
        record_mo(patient, usd("450"), details)


def test_a_duplicate_serial_at_the_same_issuer_is_refused_naming_the_earlier_payment(make_patient, invoice_for):
    patient, other = make_patient(), make_patient()
    invoice_for(patient)
    first = record_mo(patient, usd("200"), money_order(serial="77001234"), received_date=date(2026, 3, 12))

    for serial in ("77001234", "7700-1234", " 7700 1234 "):
        with refused("serial", match=rf"USPS money order 77001234 was already recorded on 03/12/2026 "
                                     rf"\(payment #{first.id}\)"):
            record_mo(other, usd("200"), money_order(serial=serial), confirm_overpayment=True)

    # Returned or not, a money order is taken once.
    payment_service.return_money_order(first, "Stopped", today=TODAY)
    with refused("serial"):
        record_mo(patient, usd("200"), money_order(serial="77001234"))


def test_the_same_serial_at_another_issuer_is_accepted(make_patient, invoice_for):
    patient = make_patient()
    invoice_for(patient)
    usps = record_mo(patient, usd("200"), money_order(serial="77001234"))
    western_union = record_mo(patient, usd("200"), money_order(MoneyOrderIssuer.WESTERN_UNION, serial="77001234"))
    assert usps.money_order.serial == western_union.money_order.serial == "77001234"
    assert balances.patient_summary(patient).balance == usd("50")


@pytest.mark.parametrize(("received", "field"), [(TODAY + timedelta(days=1), "received_date")])
def test_a_future_received_date_is_refused(make_patient, invoice_for, catalog, received, field):
    patient = make_patient()
    invoice_for(patient)
    with refused(field):
        record_mo(patient, usd("450"), received_date=received)
    with refused(field):
        record_cc(patient, usd("450"), cc_details(catalog), received_date=received)


def test_payments_dated_in_a_closed_month_are_refused(make_patient, invoice_for, catalog):
    patient = make_patient()
    invoice_for(patient, day=date(2026, 2, 20))
    close_month(date(2026, 2, 1))
    with refused(match="February 2026 are closed"):
        record_mo(patient, usd("450"), received_date=date(2026, 2, 27))
    with refused(match="February 2026 are closed"):
        record_cc(patient, usd("450"), cc_details(catalog), received_date=date(2026, 2, 27))
    record_mo(patient, usd("450"), received_date=date(2026, 3, 1))  # received in March: fine


# --- chosen allocations ----------------------------------------------------------------------------


def test_a_payment_applied_to_chosen_invoices(make_patient, invoice_for):
    patient = make_patient()
    older = invoice_for(patient, "infusion", day=date(2026, 3, 2))
    newer = invoice_for(patient, "addl", day=date(2026, 3, 9))
    payment = record_mo(patient, usd("200"), apply_to=[(newer.id, usd("150")), (older.id, usd("50"))])
    assert sorted(allocations_of(payment)) == sorted([(older.id, 5000), (newer.id, 15000)])
    assert (older.status, newer.status) == (InvoiceStatus.OPEN, InvoiceStatus.PAID)
    assert balances.invoice_balance(older) == usd("400")


def test_a_chosen_allocation_that_leaves_money_over_needs_confirmation(make_patient, invoice_for):
    patient = make_patient()
    older = invoice_for(patient, "infusion", day=date(2026, 3, 2))
    invoice_for(patient, "addl", day=date(2026, 3, 9))
    with refused("confirm_overpayment"):
        record_mo(patient, usd("200"), apply_to=[(older.id, usd("100"))])
    payment = record_mo(patient, usd("200"), apply_to=[(older.id, usd("100"))], confirm_overpayment=True)
    assert allocations_of(payment) == [(older.id, 10000)]
    assert balances.patient_credit(patient.id) == usd("100")
    payment = record_mo(patient, usd("20"), apply_to=[], confirm_overpayment=True)  # nothing chosen: all credit
    assert allocations_of(payment) == []
    assert balances.patient_credit(patient.id) == usd("120")


def test_chosen_allocation_refusals(make_patient, invoice_for):
    patient, other = make_patient(), make_patient()
    invoice = invoice_for(patient)
    theirs = invoice_for(other)
    with refused("apply_to", match="only \\$450.00 due"):
        record_mo(patient, usd("500"), apply_to=[(invoice.id, usd("450.01"))], confirm_overpayment=True)
    with refused("apply_to"):
        record_mo(patient, usd("500"), apply_to=[(invoice.id, Money(-100))], confirm_overpayment=True)
    with refused("apply_to", match="add up to more"):
        record_mo(patient, usd("400"), apply_to=[(invoice.id, usd("450"))], confirm_overpayment=True)
    with refused("apply_to", match="this patient's open invoices"):
        record_mo(patient, usd("450"), apply_to=[(theirs.id, usd("450"))])
    record_mo(patient, usd("450"))
    with refused("apply_to", match="this patient's open invoices"):  # paid now
        record_mo(patient, usd("10"), apply_to=[(invoice.id, usd("10"))])


def test_the_same_invoice_chosen_twice_cannot_be_paid_beyond_its_balance(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    with refused("apply_to"):
        record_mo(patient, usd("600"), apply_to=[(invoice.id, usd("300")), (invoice.id, usd("300"))],
                  confirm_overpayment=True)
    assert balances.invoice_balance(invoice) == usd("450")
    # Split in two lines that fit, it is one allocation of the sum.
    payment = record_mo(patient, usd("400"), apply_to=[(invoice.id, usd("300")), (invoice.id, usd("100"))])
    assert sum(amount for _, amount in allocations_of(payment)) == 40000
    assert balances.invoice_balance(invoice) == usd("50")


# --- CareCredit ------------------------------------------------------------------------------------


def test_carecredit_posts_to_the_carecredit_receivable_and_keeps_the_plan_fee(make_patient, invoice_for, catalog):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = record_cc(patient, usd("450"), cc_details(catalog, plan=catalog["24mo"], account_last4=" 9876 "))

    assert (payment.method, payment.status) == (PaymentMethod.CARECREDIT, PaymentStatus.SUCCEEDED)
    details = payment.carecredit
    assert (details.authorization_code, details.plan_id, details.merchant_fee_bps, details.account_last4) == (
        "A1B2C3", catalog["24mo"].id, 1490, "9876")
    assert invoice.status == InvoiceStatus.PAID
    assert entry_lines(payment) == [{("1030", 45000, None), ("1100", -45000, patient.id)}]
    catalog["24mo"].merchant_fee_bps = 1590  # a later change of the plan's rate
    db.session.flush()
    db.session.expire_all()
    assert payment.carecredit.merchant_fee_bps == 1490


@pytest.mark.parametrize(("overrides", "field"), [
    ({"authorization_code": "ab1"}, "authorization_code"),
    ({"authorization_code": "A1B2C3D4E5F6G"}, "authorization_code"),
    ({"authorization_code": "A1-B2"}, "authorization_code"),
    ({"account_last4": "123"}, "account_last4"),
    ({"account_last4": "4111111111111111"}, "account_last4"),
    ({"account_last4": "12a4"}, "account_last4"),
    ({"id_checked": False}, "verification"),
    ({"receipt_signed": False}, "verification"),
])
def test_carecredit_detail_refusals(make_patient, invoice_for, catalog, overrides, field):
    patient = make_patient()
    invoice_for(patient)
    with refused(field):
        record_cc(patient, usd("450"), cc_details(catalog, **overrides))


def test_an_inactive_plan_is_refused(make_patient, invoice_for, catalog):
    patient = make_patient()
    invoice_for(patient)
    catalog["12mo"].active = False
    with refused("plan"):
        record_cc(patient, usd("450"), cc_details(catalog))


def test_carecredit_overpayment_needs_confirmation(make_patient, invoice_for, catalog):
    patient = make_patient()
    invoice_for(patient)
    with refused("confirm_overpayment"):
        record_cc(patient, usd("460"), cc_details(catalog))
    record_cc(patient, usd("460"), cc_details(catalog), confirm_overpayment=True)
    assert balances.patient_credit(patient.id) == usd("10")


def test_a_card_payment_settles_into_stripe_clearing(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = Payment(patient_id=patient.id, method=PaymentMethod.CARD, status=PaymentStatus.PENDING,
                      amount_cents=50000, received_date=TODAY)
    db.session.add(payment)
    db.session.flush()
    payment_service.settle_payment(payment)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert invoice.status == InvoiceStatus.PAID
    assert entry_lines(payment) == [{("1020", 50000, None), ("1100", -45000, patient.id), ("2100", -5000, patient.id)}]


# --- apply_credit -----------------------------------------------------------------------------------


def test_apply_credit_all_that_fits(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    pay_mo(patient, "500", confirm=True)
    first = invoice_for(patient, "infusion")
    second = invoice_for(patient, "addl")

    assert payment_service.apply_credit(patient, first, None, today=TODAY) == usd("450")
    assert first.status == InvoiceStatus.PAID
    assert payment_service.apply_credit(patient, second, None, today=TODAY) == usd("50")
    assert balances.invoice_balance(second) == usd("100")
    assert balances.patient_credit(patient.id) == Money.zero()
    [entry] = entry_lines(first)
    assert entry == {("2100", 45000, patient.id), ("1100", -45000, patient.id)}
    credit_allocations = db.session.scalars(sa.select(Allocation).where(Allocation.payment_id.is_(None))).all()
    assert sorted(a.amount_cents for a in credit_allocations) == [5000, 45000]
    assert balances.patient_summary(patient).balance == usd("100")


def test_apply_credit_of_a_chosen_amount(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    pay_mo(patient, "100", confirm=True)
    invoice = invoice_for(patient)
    assert payment_service.apply_credit(patient, invoice, usd("40"), today=TODAY) == usd("40")
    assert balances.patient_credit(patient.id) == usd("60")
    assert balances.invoice_balance(invoice) == usd("410")


def test_apply_credit_refusals(make_patient, invoice_for, pay_mo):
    patient, other = make_patient(), make_patient()
    invoice = invoice_for(patient)
    with refused("amount", match="no credit"):
        payment_service.apply_credit(patient, invoice, None, today=TODAY)
    pay_mo(patient, "100", confirm=True, apply_to=[])
    for amount in (Money.zero(), Money(-1)):
        with refused("amount", match="greater than zero"):
            payment_service.apply_credit(patient, invoice, amount, today=TODAY)
    with refused("amount", match=r"At most \$100.00"):
        payment_service.apply_credit(patient, invoice, usd("100.01"), today=TODAY)
    theirs = invoice_for(other)
    with refused(match="this patient's open invoices"):
        payment_service.apply_credit(patient, theirs, None, today=TODAY)
    small = invoice_for(patient, "addl")
    payment_service.adjust_invoice(small, AdjustmentKind.WRITE_OFF, usd("100"), "Hardship", today=TODAY)
    with refused("amount", match=r"At most \$50.00"):
        payment_service.apply_credit(patient, small, usd("60"), today=TODAY)
    payment_service.apply_credit(patient, small, None, today=TODAY)
    assert small.status == InvoiceStatus.PAID
    with refused(match="this patient's open invoices"):
        payment_service.apply_credit(patient, small, None, today=TODAY)
    invoice_service.void_invoice(invoice, "Duplicate", today=TODAY)
    with refused(match="this patient's open invoices"):
        payment_service.apply_credit(patient, invoice, None, today=TODAY)


def test_apply_credit_when_today_is_in_a_closed_month_changes_nothing(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    pay_mo(patient, "100", confirm=True)
    invoice = invoice_for(patient)
    close_month(TODAY)
    with refused(match="closed"):
        payment_service.apply_credit(patient, invoice, None, today=TODAY)


# --- refunds -------------------------------------------------------------------------------------


def test_a_refund_comes_first_out_of_credit(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = pay_mo(patient, "500", confirm=True)

    refund = payment_service.refund_payment(payment, usd("50"), " Overpaid ", today=TODAY, check_number=" 1001 ")

    assert (refund.kind, refund.amount_cents, refund.reason, refund.check_number, refund.refund_date) == (
        RefundKind.REFUND, 5000, "Overpaid", "1001", TODAY)
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert invoice.status == InvoiceStatus.PAID
    assert balances.patient_credit(patient.id) == Money.zero()
    assert entry_lines(refund) == [{("2100", 5000, patient.id), ("1000", -5000, None)}]


def test_a_refund_beyond_the_credit_reopens_what_the_payment_paid_newest_first(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    older = invoice_for(patient, "infusion", day=date(2026, 3, 2))
    newer = invoice_for(patient, "addl", day=date(2026, 3, 9))
    other_payment = pay_mo(patient, "100", apply_to=[(older.id, usd("100"))])
    payment = pay_mo(patient, "550", confirm=True)  # 350 older, 150 newer, 50 credit
    assert allocations_of(payment) == [(older.id, 35000), (newer.id, 15000)]

    refund = payment_service.refund_payment(payment, usd("250"), "Treatment stopped", today=TODAY,
                                            check_number="1002")

    assert balances.patient_credit(patient.id) == Money.zero()
    assert balances.invoice_balance(newer) == usd("150")  # newest allocation undone first
    assert balances.invoice_balance(older) == usd("50")
    assert (older.status, newer.status) == (InvoiceStatus.OPEN, InvoiceStatus.OPEN)
    assert allocations_of(other_payment) == [(older.id, 10000)]  # another payment's allocation is kept
    assert entry_lines(refund) == [{("2100", 5000, patient.id), ("1100", 20000, patient.id), ("1000", -25000, None)}]
    assert balances.patient_summary(patient).balance == usd("200")
    assert unbalanced_entries() == []


def test_refund_partial_then_the_rest_then_not_a_cent_more(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = pay_mo(patient, "450")

    payment_service.refund_payment(payment, usd("100"), "Partial", today=TODAY, check_number="1")
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    with refused("amount", match=r"At most \$350.00"):
        payment_service.refund_payment(payment, usd("350.01"), "Too much", today=TODAY, check_number="2")
    payment_service.refund_payment(payment, usd("350"), "The rest", today=TODAY, check_number="3")
    assert payment.status == PaymentStatus.REFUNDED
    assert balances.payment_refunded(payment.id) == usd("450")
    with refused():
        payment_service.refund_payment(payment, usd("0.01"), "One cent more", today=TODAY, check_number="4")
    assert balances.invoice_balance(invoice) == usd("450")
    assert invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.BANK) == -usd("450")
    assert balances.patient_summary(patient).balance == usd("450")


def test_refund_refusals(make_patient, invoice_for, pay_mo, pay_cc):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    mo, cc = pay_mo(patient, "300"), pay_cc(patient, "300")
    for amount in (Money.zero(), Money(-5)):
        with refused("amount"):
            payment_service.refund_payment(mo, amount, "x", today=TODAY, check_number="1")
    with refused("amount"):
        payment_service.refund_payment(mo, usd("300.01"), "x", today=TODAY, check_number="1")
    with refused("reason"):
        payment_service.refund_payment(mo, usd("10"), "  ", today=TODAY, check_number="1")
    with refused("check_number"):
        payment_service.refund_payment(mo, usd("10"), "Overpaid", today=TODAY)
    with refused("check_number"):
        payment_service.refund_payment(mo, usd("10"), "Overpaid", today=TODAY, check_number="  ",
                                       return_reference="R1")
    with refused("return_reference"):
        payment_service.refund_payment(cc, usd("10"), "Overpaid", today=TODAY)
    with refused("return_reference"):
        payment_service.refund_payment(cc, usd("10"), "Overpaid", today=TODAY, check_number="1")


def test_a_carecredit_refund_is_a_return_against_the_plan(make_patient, invoice_for, pay_cc):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment = pay_cc(patient, "450")
    refund = payment_service.refund_payment(payment, usd("450"), "Cancelled", today=TODAY,
                                            return_reference="RTN-88812")
    assert refund.return_reference == "RTN-88812"
    assert payment.status == PaymentStatus.REFUNDED
    assert entry_lines(refund) == [{("1100", 45000, patient.id), ("1030", -45000, None)}]
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == Money.zero()
    assert invoice.status == InvoiceStatus.OPEN


def test_a_pending_or_returned_payment_cannot_be_refunded(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient)
    pending = Payment(patient_id=patient.id, method=PaymentMethod.CARD, status=PaymentStatus.PENDING,
                      amount_cents=1000, received_date=TODAY)
    db.session.add(pending)
    db.session.flush()
    with refused(match="completed payment"):
        payment_service.refund_payment(pending, usd("10"), "x", today=TODAY)
    returned = pay_mo(patient, "100")
    payment_service.return_money_order(returned, "Counterfeit", today=TODAY)
    with refused(match="completed payment"):
        payment_service.refund_payment(returned, usd("10"), "x", today=TODAY, check_number="1")


def test_refunds_are_refused_when_today_is_in_a_closed_month(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient, day=date(2026, 2, 10))
    payment = payment_service.record_money_order(patient, usd("500"), money_order(), received_date=date(2026, 2, 11),
                                                 today=date(2026, 2, 11), confirm_overpayment=True)
    close_month(date(2026, 2, 1))
    with refused(match="February 2026 are closed"):
        payment_service.refund_payment(payment, usd("50"), "Overpaid", today=date(2026, 2, 28), check_number="1")
    with refused(match="February 2026 are closed"):
        payment_service.return_money_order(payment, "Counterfeit", today=date(2026, 2, 28))
    payment_service.refund_payment(payment, usd("50"), "Overpaid", today=TODAY, check_number="1")  # March: fine


# --- money order returns ------------------------------------------------------------------------------


def test_a_returned_money_order_reopens_the_invoices_it_paid(make_patient, invoice_for, pay_mo, pay_cc):
    patient = make_patient()
    first = invoice_for(patient, "infusion", day=date(2026, 3, 2))
    second = invoice_for(patient, "addl", day=date(2026, 3, 9))
    card = pay_cc(patient, "100", apply_to=[(first.id, usd("100"))])
    payment = pay_mo(patient, "500")  # 350 first, 150 second
    assert (first.status, second.status) == (InvoiceStatus.PAID, InvoiceStatus.PAID)

    refund = payment_service.return_money_order(payment, " Counterfeit ", today=TODAY)

    assert (refund.kind, refund.amount_cents, refund.reason) == (RefundKind.RETURN, 50000, "Counterfeit")
    assert payment.status == PaymentStatus.RETURNED
    assert (first.status, second.status) == (InvoiceStatus.OPEN, InvoiceStatus.OPEN)
    assert (balances.invoice_balance(first), balances.invoice_balance(second)) == (usd("350"), usd("150"))
    assert allocations_of(card) == [(first.id, 10000)]
    assert entry_lines(refund) == [{("1100", 50000, patient.id), ("1010", -50000, None)}]
    assert journal.balance(journal.UNDEPOSITED) == Money.zero()
    assert balances.patient_summary(patient).balance == usd("500")


def test_a_returned_money_order_takes_back_the_credit_it_left_and_what_that_credit_paid(
        make_patient, invoice_for, pay_mo):
    patient = make_patient()
    first = invoice_for(patient)
    payment = pay_mo(patient, "600", confirm=True)  # 450 first, 150 credit
    second = invoice_for(patient, "addl")
    payment_service.apply_credit(patient, second, usd("100"), today=TODAY)  # 50 credit left

    refund = payment_service.return_money_order(payment, "Stopped", today=TODAY)

    assert balances.patient_credit(patient.id) == Money.zero()
    assert (balances.invoice_balance(first), balances.invoice_balance(second)) == (usd("450"), usd("150"))
    assert entry_lines(refund) == [{("1100", 55000, patient.id), ("2100", 5000, patient.id), ("1010", -60000, None)}]
    assert balances.patient_summary(patient).balance == usd("600")
    assert unbalanced_entries() == []


def test_return_refusals(make_patient, invoice_for, pay_mo, pay_cc):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    cc, mo = pay_cc(patient, "100"), pay_mo(patient, "200")
    with refused(match="Only a money order"):
        payment_service.return_money_order(cc, "Stopped", today=TODAY)
    with refused("reason"):
        payment_service.return_money_order(mo, "  ", today=TODAY)
    payment_service.refund_payment(mo, usd("10"), "Partial", today=TODAY, check_number="1")
    with refused(match="bookkeeper"):
        payment_service.return_money_order(mo, "Stopped", today=TODAY)
    other = pay_mo(patient, "50")
    payment_service.return_money_order(other, "Stopped", today=TODAY)
    with refused(match="not refunded"):
        payment_service.return_money_order(other, "Again", today=TODAY)


# --- adjustments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(AdjustmentKind))
def test_an_adjustment_reduces_what_is_due(make_patient, invoice_for, kind):
    patient = make_patient()
    invoice = invoice_for(patient)
    adjustment = payment_service.adjust_invoice(invoice, kind, usd("50"), " Hardship ", today=TODAY)
    assert (adjustment.kind, adjustment.amount_cents, adjustment.reason) == (kind, 5000, "Hardship")
    assert balances.invoice_balance(invoice) == usd("400")
    assert entry_lines(adjustment) == [{("4910", 5000, None), ("1100", -5000, patient.id)}]
    payment_service.adjust_invoice(invoice, kind, usd("400"), "The rest", today=TODAY)
    assert invoice.status == InvoiceStatus.PAID
    assert balances.patient_summary(patient).balance == Money.zero()


def test_adjustment_refusals(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    pay_mo(patient, "400")
    for amount in (Money.zero(), Money(-1), usd("50.01")):
        with refused("amount", match=r"between \$0.01 and \$50.00"):
            payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, amount, "x", today=TODAY)
    with refused("reason"):
        payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, usd("5"), " ", today=TODAY)
    pay_mo(patient, "50")
    with refused(match="Only an open invoice"):
        payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, usd("5"), "x", today=TODAY)
    void = invoice_for(patient)
    invoice_service.void_invoice(void, "Duplicate", today=TODAY)
    with refused(match="Only an open invoice"):
        payment_service.adjust_invoice(void, AdjustmentKind.WRITE_OFF, usd("5"), "x", today=TODAY)


def test_an_adjustment_when_today_is_in_a_closed_month_changes_nothing(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    close_month(TODAY)
    with refused(match="closed"):
        payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, usd("450"), "Kindness", today=TODAY)
    assert invoice.status == InvoiceStatus.OPEN


# --- a day at the desk: the books agree -------------------------------------------------------------


def test_the_books_agree_after_a_mixed_day(make_patient, invoice_for, pay_mo, pay_cc, catalog):
    patient = make_patient()
    first = invoice_for(patient, "infusion", "addl")
    payment_service.adjust_invoice(first, AdjustmentKind.COURTESY, usd("30"), "Wait time", today=TODAY)
    mo = pay_mo(patient, "400")
    cc = pay_cc(patient, "300", confirm=True)
    payment_service.refund_payment(cc, usd("120"), "Overpaid", today=TODAY, return_reference="R-1")
    second = invoice_for(patient, "infusion")
    payment_service.apply_credit(patient, second, None, today=TODAY)
    payment_service.return_money_order(mo, "Counterfeit", today=TODAY)

    summary = balances.patient_summary(patient)
    receivable = balances.patient_receivable(patient.id)
    assert receivable == summary.due + summary.uninvoiced
    assert summary.balance == receivable - balances.patient_credit(patient.id)
    # 1050 charged − 30 adjusted − (300 − 120) CareCredit kept; the money order came back.
    assert summary.balance == usd("840")
    assert journal.balance(journal.UNDEPOSITED) == Money.zero()
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == usd("180")
    assert unbalanced_entries() == []


def test_a_serial_recorded_by_another_desk_a_moment_ago_is_refused_and_leaves_nothing(
        make_patient, invoice_for, monkeypatch):
    """The check before the insert missed it (the other desk had not committed yet): the unique
    constraint catches it, and the half-written payment goes with the savepoint."""
    patient, other = make_patient(), make_patient()
    invoice_for(patient)
    first = record_mo(other, usd("100"), money_order(serial="88002211"), confirm_overpayment=True)
    real_check = payment_service._refuse_duplicate_serial
    calls = []

    def check_too_early(issuer, serial):
        calls.append(serial)
        if len(calls) > 1:  # the second look, after the constraint fired, sees it
            real_check(issuer, serial)

    monkeypatch.setattr(payment_service, "_refuse_duplicate_serial", check_too_early)
    with refused("serial", match=rf"payment #{first.id}"):
        record_mo(patient, usd("450"), money_order(serial="88002211"))
    assert calls == ["88002211", "88002211"]
