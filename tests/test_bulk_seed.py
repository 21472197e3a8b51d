"""The bulk demo generator (billing.bulk_seed): its rows make consistent books, read by the app's own
balances and reports (settlement included: Stripe payouts, deposits, CareCredit fundings, the stored
month-end figures and month totals equal to what the app computes live), and the app carries on
normally after it (ids, account, invoice and deposit numbers)."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billing import bulk_seed
from billing.demo import seed_catalog
from billing.extensions import db
from billing.models import (
    AccountMonthTotal, Allocation, CardDetails, CareCreditDetails, CareCreditFunding, CareCreditFundingLine,
    Charge, DepositBatch, DepositBatchItem, DepositStatus, Invoice, InvoiceLine, InvoiceStatus,
    JournalEntry, JournalLine, MoneyOrderDetails, MoneyOrderIssuer, Patient, Payment, PaymentMethod,
    StripeBalanceTransaction, StripePayout,
)
from billing.money import Money
from billing.reports import reconciliation
from billing.reports.revenue import method_totals
from billing.reports.trial_balance import totals, totals_drift, trial_balance
from billing.services import deposits, journal, settlement
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.services.balances import invoice_balance, patient_credit, patient_receivable
from billing.services.payments import MoneyOrderInput

TODAY = date(2026, 3, 5)  # a Thursday: this week's deposit batch is made, not yet deposited
PATIENTS, MONTHS = 30, 4  # 240 payments, over two calendar years (Nov 2025 to Feb 2026, a few paid in March)
MONTH_STARTS = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def cents(query) -> int:
    return int(db.session.scalar(query) or 0)


@pytest.fixture
def seeded(app):
    seed_catalog()
    db.session.commit()
    progress = []
    stats = bulk_seed.seed(random.Random(7), today=TODAY, patients=PATIENTS, months=MONTHS, progress=progress.append)
    db.session.commit()
    return stats, progress


def test_counts_and_progress(seeded):
    stats, progress = seeded
    payments = bulk_seed.expected_payments(PATIENTS, MONTHS)
    assert payments == 240 and sum(progress) == payments
    assert (count(Patient), count(Payment), count(Invoice), count(Allocation)) == (PATIENTS, payments, payments,
                                                                                 payments)
    assert (stats.patients, stats.payments, stats.invoices) == (PATIENTS, payments, payments)
    assert count(Charge) == count(InvoiceLine) == stats.charges >= payments
    assert (count(StripePayout), count(DepositBatch), count(CareCreditFunding)) == (
        stats.payouts, stats.deposits, stats.fundings)
    deposited = db.session.scalar(sa.select(sa.func.count()).where(DepositBatch.status == DepositStatus.DEPOSITED))
    assert count(JournalEntry) == stats.journal_entries == (
        stats.charges + payments + stats.payouts + deposited + stats.fundings)
    assert stats.card_payments == count(CardDetails) and stats.daily_closes == 0
    # every payment has the detail row of its method, and only that one
    by_method = dict(db.session.execute(sa.select(Payment.method, sa.func.count()).group_by(Payment.method)).all())
    assert set(by_method) == set(PaymentMethod)
    assert (count(CardDetails), count(MoneyOrderDetails), count(CareCreditDetails)) == (
        by_method[PaymentMethod.CARD], by_method[PaymentMethod.MONEY_ORDER], by_method[PaymentMethod.CARECREDIT])
    days = db.session.execute(sa.select(sa.func.min(Payment.received_date), sa.func.max(Payment.received_date))).one()
    assert days[0] >= date(2025, 11, 1) and days[1] <= TODAY


def test_every_entry_balances_and_the_trial_balance_ties(seeded):
    unbalanced = db.session.execute(
        sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
        .having(sa.func.sum(JournalLine.amount_cents) != 0)).all()
    assert unbalanced == []
    assert count(JournalLine) >= 2 * count(JournalEntry)
    debits, credits = totals(trial_balance(TODAY))
    assert debits == credits and debits.is_positive


def test_receivables_are_the_open_invoices_balances(seeded):
    stats, _ = seeded
    open_invoices = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.OPEN)).all()
    assert len(open_invoices) == stats.open_invoices > 0
    open_total = sum((invoice_balance(i) for i in open_invoices), Money.zero())
    assert open_total.is_positive
    assert journal.balance(journal.RECEIVABLES) == open_total
    # an invoice marked paid owes nothing; per patient, the ledger agrees with the invoices
    paid = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.PAID)).all()
    assert paid and all(invoice_balance(i) == Money.zero() for i in paid)
    for patient_id in db.session.scalars(sa.select(Patient.id)):
        owed = sum((invoice_balance(i) for i in open_invoices if i.patient_id == patient_id), Money.zero())
        assert patient_receivable(patient_id) == owed


def line_total(code: str) -> Money:
    """An account's balance summed from its journal lines (not from the month totals)."""
    return Money(cents(sa.select(sa.func.sum(JournalLine.amount_cents))
                       .where(JournalLine.account_id == journal.account_id(code))))


def test_the_clearing_accounts_hold_exactly_the_unsettled_payments(seeded):
    """A payment leaves its clearing account when its settlement has happened by today: the Tuesday
    payout at least two days after a card charge, the deposit the day after the Thursday batch a
    money order went in, the funding two business days after a CareCredit charge."""
    rows = db.session.execute(sa.select(Payment.id, Payment.method, Payment.received_date, Payment.amount_cents,
                                        Payment.cleared_on)).all()
    settles_on = {PaymentMethod.CARD: bulk_seed.payout_day,
                  PaymentMethod.MONEY_ORDER: lambda d: bulk_seed.deposit_day(bulk_seed.batch_day(d)),
                  PaymentMethod.CARECREDIT: bulk_seed.funding_day}
    for payment_id, method, received, _, cleared_on in rows:
        day = settles_on[PaymentMethod(method)](received)
        assert cleared_on == (day if day <= TODAY else None), payment_id
    for method, code in reconciliation.CLEARING_ACCOUNTS.items():
        unsettled = [amount for _, m, _, amount, cleared_on in rows if m == method and cleared_on is None]
        settled = [amount for _, m, _, amount, cleared_on in rows if m == method and cleared_on is not None]
        assert unsettled and settled, method  # TODAY leaves some of each method in transit
        assert line_total(code) == journal.balance(code) == Money(sum(unsettled)), method
    assert payment_weekdays(StripePayout.arrival_date) == {1}  # Tuesdays
    assert payment_weekdays(CareCreditFunding.funded_on) <= {0, 1, 2, 3, 4}


def payment_weekdays(column) -> set[int]:
    return {day.weekday() for day in db.session.scalars(sa.select(column))}


def test_settlement_is_posted_as_the_services_post_it(seeded):
    """Each payout, deposit and funding: its rows add up, and one journal entry posts it to the accounts
    the services use (payouts.py, deposits.py, fundings.py)."""
    def entry_lines(source_type: str, source_id: int) -> dict[str, int]:
        rows = db.session.execute(
            sa.select(JournalLine.account_id, JournalLine.amount_cents).join(JournalEntry)
            .where(JournalEntry.source_type == source_type, JournalEntry.source_id == str(source_id))).all()
        codes = {journal.account_id(c): c for c in (journal.BANK, journal.MERCHANT_FEES, journal.STRIPE_CLEARING,
                                                   journal.UNDEPOSITED, journal.FINANCING_FEES,
                                                   journal.CARECREDIT_RECEIVABLE)}
        return {codes[account]: amount for account, amount in rows}

    BT = StripeBalanceTransaction
    card_payments = dict(db.session.execute(
        sa.select(Payment.id, Payment.amount_cents).where(Payment.method == PaymentMethod.CARD)).all())
    for payout in db.session.scalars(sa.select(StripePayout)):
        gross, fee, net, n = db.session.execute(sa.select(sa.func.sum(BT.gross_cents), sa.func.sum(BT.fee_cents),
                                                          sa.func.sum(BT.net_cents), sa.func.count())
                                                .where(BT.payout_id == payout.id)).one()
        assert payout.posted and (payout.amount_cents, payout.fee_cents) == (net, fee) and net == gross - fee
        assert entry_lines("StripePayout", payout.id) == {
            journal.MERCHANT_FEES: fee, journal.BANK: net, journal.STRIPE_CLEARING: -gross}
    for t in db.session.scalars(sa.select(BT)):
        assert (t.reporting_category, t.gross_cents) == ("charge", card_payments[t.payment_id])
        assert t.fee_cents == bulk_seed.stripe_fee(t.gross_cents) and t.net_cents == t.gross_cents - t.fee_cents
        assert t.charge_id == db.session.get(CardDetails, t.payment_id).charge_id
    numbers = {}
    for batch in db.session.scalars(sa.select(DepositBatch).order_by(DepositBatch.created_at)):
        year, n = batch.number.removeprefix("DEP-").split("-")
        numbers.setdefault(year, []).append(int(n))
        items = db.session.scalars(sa.select(Payment).join(DepositBatchItem, DepositBatchItem.payment_id == Payment.id)
                                   .where(DepositBatchItem.batch_id == batch.id)).all()
        assert items and batch.total_cents == sum(p.amount_cents for p in items)
        assert all(p.method == PaymentMethod.MONEY_ORDER and p.received_date <= batch.created_at.date() for p in items)
        if batch.status == DepositStatus.DEPOSITED:
            assert batch.deposited_on == batch.created_at.date() + timedelta(days=1) <= TODAY
            assert entry_lines("DepositBatch", batch.id) == {journal.BANK: batch.total_cents,
                                                             journal.UNDEPOSITED: -batch.total_cents}
        else:  # this week's, made today
            assert batch.status == DepositStatus.OPEN and batch.created_at.date() == TODAY
            assert entry_lines("DepositBatch", batch.id) == {}
    assert numbers and all(ns == list(range(1, len(ns) + 1)) for ns in numbers.values())  # gap-free, by date
    fee_bps = dict(db.session.execute(
        sa.select(CareCreditDetails.payment_id, CareCreditDetails.merchant_fee_bps)).all())
    for funding in db.session.scalars(sa.select(CareCreditFunding)):
        lines = funding.lines
        assert lines and funding.reference == f"CC{funding.funded_on:%Y%m%d}"
        assert all(line.fee_cents == bulk_seed.plan_fee(line.gross_cents, fee_bps[line.payment_id])
                   and bulk_seed.funding_day(line.transaction_date) == funding.funded_on for line in lines)
        assert (funding.gross_cents, funding.fee_cents, funding.net_cents) == (
            sum(x.gross_cents for x in lines), sum(x.fee_cents for x in lines), sum(x.net_cents for x in lines))
        assert entry_lines("CareCreditFunding", funding.id) == {
            journal.BANK: funding.net_cents, journal.FINANCING_FEES: funding.fee_cents,
            journal.CARECREDIT_RECEIVABLE: -funding.gross_cents}
    # what the app's own screens count: the open batch's money orders are not on hand, the rest is funded
    assert deposits.open_batches() and all(b.status == DepositStatus.OPEN for b in deposits.open_batches())
    assert count(CareCreditFundingLine) == db.session.scalar(
        sa.select(sa.func.count()).where(Payment.method == PaymentMethod.CARECREDIT, Payment.cleared_on.is_not(None)))


def test_the_stored_figures_are_what_the_reconciliation_computes(seeded):
    """Each payment's recon_* columns and cleared_on, written in bulk, are what billing.services.settlement
    computes afresh (its month-end figures, the day it cleared), summed per month and method in
    payment_month_figures; and they are not trivial: some payments were in transit at the end of their
    month and settled in the next."""
    assert settlement.stale() == [] and settlement.month_figures_drift() == []
    settled_later = dict(db.session.execute(
        sa.select(Payment.method, sa.func.count())
        .where(Payment.recon_in_transit_cents > 0, Payment.cleared_on.is_not(None)).group_by(Payment.method)).all())
    assert set(settled_later) == set(PaymentMethod)
    assert db.session.scalar(sa.select(sa.func.sum(Payment.recon_fee_cents))) > 0
    # the guard sees a figure off by a cent
    payment_id = db.session.scalar(sa.select(sa.func.min(Payment.id)))
    db.session.execute(sa.update(Payment.__table__).where(Payment.__table__.c.id == payment_id)
                       .values(recon_settled_cents=Payment.__table__.c.recon_settled_cents + 1))
    assert settlement.stale() == [payment_id]


def test_the_month_totals_are_the_journal_lines_grouped(seeded):
    assert totals_drift() == []
    sources = set(db.session.scalars(sa.select(AccountMonthTotal.source_type)))
    assert sources == {"Charge", "Payment", "StripePayout", "DepositBatch", "CareCreditFunding"}
    assert db.session.scalar(sa.select(sa.func.sum(AccountMonthTotal.debit_cents))) == cents(
        sa.select(sa.func.sum(JournalLine.amount_cents)).where(JournalLine.amount_cents > 0))


@pytest.mark.parametrize("start", MONTH_STARTS)
def test_every_month_reconciles(seeded, start):
    report = reconciliation.reconciliation(start)
    for m in report.methods:
        assert m.difference == Money.zero() and m.differing == 0 and m.fee_mismatches == 0, m.method
        assert m.count and m.received == m.settled + m.in_transit, m.method
    for account in report.clearing:
        assert account.unexplained == Money.zero(), account.code
    assert report.receivables.difference == Money.zero()
    debits, credits = report.trial_totals
    assert debits == credits and debits.is_positive
    if start == date(2026, 1, 1):  # what was still on its way at the end of January, of every method
        assert all(m.in_transit.is_positive and m.unsettled for m in report.methods)


def test_money_lands_where_the_services_would_put_it(seeded):
    paid = {m: cents(sa.select(sa.func.sum(Payment.amount_cents)).where(Payment.method == m)) for m in PaymentMethod}
    fees = (cents(sa.select(sa.func.sum(StripePayout.fee_cents)))
            + cents(sa.select(sa.func.sum(CareCreditFunding.fee_cents))))
    unsettled = cents(sa.select(sa.func.sum(Payment.amount_cents)).where(Payment.cleared_on.is_(None)))
    assert journal.balance(journal.BANK) == Money(sum(paid.values()) - unsettled - fees)
    assert journal.balance(journal.MERCHANT_FEES) + journal.balance(journal.FINANCING_FEES) == Money(fees)
    overpaid = (cents(sa.select(sa.func.sum(Payment.amount_cents)))
                - cents(sa.select(sa.func.sum(Allocation.amount_cents))))
    assert overpaid > 0
    assert journal.balance(journal.PATIENT_CREDITS) == -Money(overpaid)
    assert sum((patient_credit(p) for p in db.session.scalars(sa.select(Patient.id))), Money.zero()) == Money(overpaid)
    revenue = sum((journal.balance(code) for code in set(journal.REVENUE.values())), Money.zero())
    assert revenue == -Money(cents(sa.select(sa.func.sum(Charge.amount_cents))))
    # the bookkeeper's report reads the same totals
    report = {f.label: f.amount for f in method_totals(date(2025, 11, 1), TODAY)}
    assert report == {m.label: Money(paid[m]) for m in PaymentMethod}


def test_invoice_numbers_run_per_year_and_the_app_carries_on(seeded):
    numbers = db.session.scalars(sa.select(Invoice.number).order_by(Invoice.id)).all()
    in_2025 = [n for n in numbers if n.startswith("INV-2025-")]
    in_2026 = [n for n in numbers if n.startswith("INV-2026-")]
    assert len(in_2025) + len(in_2026) == len(numbers)
    assert in_2025 == [f"INV-2025-{i:06d}" for i in range(1, len(in_2025) + 1)]
    assert in_2026 == [f"INV-2026-{i:06d}" for i in range(1, len(in_2026) + 1)]
    # services after the bulk rows: the next account number, new ids from the sequences, a payment on an open invoice
    patient = patient_service.create_patient({"first_name": "Ada", "last_name": "After", "date_of_birth":
                                              date(1970, 1, 2)}, today=TODAY)
    assert patient.account_number == f"P{PATIENTS + 1:06d}"
    invoice = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.OPEN)
                                 .order_by(Invoice.id).limit(1)).one()
    due = invoice_balance(invoice)
    payment = payment_service.record_money_order(
        invoice.patient, due, MoneyOrderInput(MoneyOrderIssuer.USPS, "12345678901", "Ada After", True, True, True),
        received_date=TODAY, today=TODAY, apply_to=[(invoice.id, due)])
    db.session.commit()
    assert payment.id > count(Payment) - 1
    assert db.session.get(Invoice, invoice.id).status == InvoiceStatus.PAID
    # the next deposit batch is numbered after the bulk ones of the year
    last = max(int(n.rsplit("-", 1)[1]) for n in db.session.scalars(
        sa.select(DepositBatch.number).where(DepositBatch.number.like("DEP-2026-%"))))
    assert deposits.create_batch([payment.id], today=TODAY).number == f"DEP-2026-{last + 1:04d}"
    assert db.session.execute(sa.select(sa.func.sum(JournalLine.amount_cents))).scalar() == 0


def test_refuses_a_clinic_with_patients_and_writes_nothing(seeded):
    before = (count(Patient), count(Payment), count(JournalLine))
    with pytest.raises(ValueError, match="without patients"):
        bulk_seed.seed(random.Random(7), today=TODAY, patients=5, months=1)
    assert (count(Patient), count(Payment), count(JournalLine)) == before


def test_same_seed_same_rows(app):
    """Two chunks built from the same seed are identical (the rows, before ids are offset)."""
    seed_catalog()
    db.session.flush()

    def chunk(seed):
        return bulk_seed._Clinic.load(random.Random(seed), TODAY, 2).rows_for(3)

    assert chunk(3) == chunk(3)
    assert chunk(3) != chunk(4)


def test_an_unbalanced_entry_is_refused(app):
    seed_catalog()
    db.session.flush()
    clinic = bulk_seed._Clinic.load(random.Random(1), TODAY, 1)
    clinic.tables = {t: [] for t in bulk_seed.ORDER}
    with pytest.raises(ValueError, match="Unbalanced"):
        clinic.post(TODAY, "Broken", "Charge", 1, [(1, None, 100), (2, None, -99)])
    assert clinic.tables["journal_entries"] == clinic.tables["journal_lines"] == []


def test_refuses_a_catalog_without_the_demo_services(app):
    with pytest.raises(ValueError, match="run seed_catalog first"):
        bulk_seed.seed(random.Random(1), today=TODAY, patients=2, months=1)
    assert count(Payment) == 0


def test_seed_demo_bulk_from_the_command_line(runner):
    result = runner.invoke(args=["billing", "seed-demo", "--bulk", "--patients", "4", "--months", "2"])

    assert result.exit_code == 0, result.output
    assert "Seeded 4 patients" in result.output and "16 payments over 2 months" in result.output
    assert (count(Patient), count(Payment)) == (4, 16)
    assert db.session.execute(sa.select(sa.func.sum(JournalLine.amount_cents))).scalar() == 0
