"""Random days at the front desk: whatever staff do, in any order, the books stay consistent.

A hypothesis state machine posts charges, issues and voids invoices, takes money orders and
CareCredit (sometimes too much, sometimes on chosen invoices), applies credit, refunds, returns
money orders, adjusts, and sells, draws and refunds packages. A refused call must leave
everything as it was; after every step the invariants below must hold.
"""

from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test,
)

from billing.extensions import db
from billing.models import (
    Account, Adjustment, AdjustmentKind, Allocation, Charge, ChargeStatus, Invoice, InvoiceLine, InvoiceStatus,
    JournalLine, PackagePurchase, Patient, Payment, PaymentMethod, PaymentStatus, Refund, RefundKind,
)
from billing.money import Money
from billing.services import ServiceError, balances, journal, settlement
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, ledger_snapshot, money_order, unbalanced_entries

SERVICES = ("consult", "infusion", "addl")
ACCOUNTS = (journal.RECEIVABLES, journal.PATIENT_CREDITS, journal.UNDEPOSITED, journal.CARECREDIT_RECEIVABLE,
            journal.BANK, journal.DISCOUNTS, journal.REFUNDS, *sorted(set(journal.REVENUE.values())))
HELD = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _sum(query) -> int:
    return int(db.session.scalar(query) or 0)


class LedgerMachine(RuleBasedStateMachine):
    """One example: two fresh patients, inside a savepoint rolled back at teardown."""

    catalog: dict = {}

    def __init__(self):
        super().__init__()
        self.savepoint = db.session.begin_nested()
        self.baseline = {code: journal.balance(code) for code in ACCOUNTS}
        self.patient_ids = [
            patient_service.create_patient({"first_name": first, "last_name": "Statewise", "date_of_birth":
                                            date(1985, 2, 3)}, today=TODAY).id
            for first in ("Ada", "Bo")
        ]
        db.session.flush()

    def teardown(self):
        self.savepoint.rollback()
        db.session.expire_all()

    # --- helpers -------------------------------------------------------------------------------

    def attempt(self, call):
        """Run one service call in a savepoint; a refusal must leave the ledger exactly as it was
        (compared with the state the savepoint's rollback restores, which is the state before)."""
        savepoint = db.session.begin_nested()
        try:
            result = call()
            db.session.flush()
        except ServiceError as err:
            after = ledger_snapshot()
            savepoint.rollback()
            assert after == ledger_snapshot(), f"refused call changed the ledger: {err.message}"
            return None
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return result

    @staticmethod
    def exists(model, *where) -> bool:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) > 0

    def patient(self, data) -> Patient:
        return db.session.get(Patient, data.draw(st.sampled_from(self.patient_ids), label="patient"))

    def pick(self, data, model, *where, label: str, refusable=()):
        """A row of `model` matching `where` — or, now and then, matching only `refusable` (so that
        refusals are tried too) — or None when there is none."""
        if refusable and data.draw(st.sampled_from([False, False, False, True]), label=f"{label}: any"):
            where = refusable
        ids = list(db.session.scalars(sa.select(model.id).where(*where).order_by(model.id)))
        if not ids:
            return None
        return db.session.get(model, data.draw(st.sampled_from(ids), label=label))

    def day(self, data) -> date:
        return date(2026, 3, data.draw(st.integers(1, TODAY.day), label="day"))

    def apply_to(self, data, patient: Patient):
        """None (oldest first), or chosen invoices with shares that may be too large or repeated."""
        if data.draw(st.booleans(), label="oldest first"):
            return None
        invoices = balances.open_invoices(patient.id)
        if not invoices:
            return []
        chosen = data.draw(st.lists(st.sampled_from(invoices), max_size=3), label="invoices")  # repeats too
        return [(i.id, Money(data.draw(self.near(balances.invoice_balance(i).cents), label="share"))) for i in chosen]

    @staticmethod
    def near(limit: int):
        """Amounts around a limit: all of it, a cent over, about half, nothing, or anything up to a bit over."""
        return st.one_of(st.sampled_from([limit, limit + 1, limit // 2 + 1, 0]), st.integers(0, limit + 100))

    def charge(self, data, patient: Patient):
        service = self.catalog[data.draw(st.sampled_from(SERVICES), label="service")]
        units = data.draw(st.integers(1, 3), label="units")
        gross = service.default_price_cents * units
        discount = data.draw(st.sampled_from([0, 0, 0, gross // 10, gross // 3, gross, gross + 1]), label="discount")
        return self.attempt(lambda: charge_service.post_charge(patient, charge_service.ChargeInput(
            service=service, date_of_service=self.day(data), units=units, discount=Money(discount)), today=TODAY))

    def invoice(self, patient: Patient, charge_ids=None):
        return self.attempt(lambda: invoice_service.issue_invoice(patient, today=TODAY, charge_ids=charge_ids))

    # --- charges and packages -------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_visits(self, data):
        """Each patient starts with a visit or two, invoiced: the usual first thing at the desk."""
        for patient_id in self.patient_ids:
            patient = db.session.get(Patient, patient_id)
            for _ in range(data.draw(st.integers(1, 2), label="visits")):
                self.charge(data, patient)
            self.invoice(patient)

    @rule(data=st.data(), invoice_now=st.booleans())
    def post_charge(self, data, invoice_now):
        patient = self.patient(data)
        if self.charge(data, patient) is not None and invoice_now:
            self.invoice(patient)

    @rule(data=st.data(), paid_now=st.booleans())
    def sell_package(self, data, paid_now):
        patient = self.patient(data)
        purchase = self.attempt(lambda: charge_service.sell_package(patient, self.catalog["package"],
                                                                    date_of_service=self.day(data), today=TODAY))
        if purchase is not None and paid_now:  # invoiced and paid on the spot, by money order
            invoice = self.invoice(patient, [purchase.charge_id])
            self.attempt(lambda: payment_service.record_money_order(
                patient, Money(invoice.total_cents), money_order(), received_date=TODAY, today=TODAY,
                apply_to=[(invoice.id, Money(invoice.total_cents))]))

    @precondition(lambda self: self.exists(PackagePurchase))
    @rule(data=st.data())
    def draw_package_unit(self, data):
        patient = self.patient(data)
        units = data.draw(st.integers(1, 2), label="units")
        self.attempt(lambda: charge_service.post_charge(patient, charge_service.ChargeInput(
            service=self.catalog["infusion"], date_of_service=self.day(data), units=units, use_package=True),
            today=TODAY))

    @precondition(lambda self: self.exists(PackagePurchase))
    @rule(data=st.data())
    def refund_package_units(self, data):
        purchase = self.pick(data, PackagePurchase, label="purchase")
        units = data.draw(st.integers(1, 4), label="units")
        self.attempt(lambda: charge_service.refund_package_units(purchase, units, "Stopping", today=TODAY))

    @precondition(lambda self: self.exists(Charge, Charge.status != ChargeStatus.VOID))
    @rule(data=st.data())
    def void_charge(self, data):
        charge = self.pick(data, Charge, Charge.status == ChargeStatus.OPEN, label="charge",
                           refusable=[Charge.status != ChargeStatus.VOID])
        if charge is not None:
            self.attempt(lambda: charge_service.void_charge(charge, "Entered in error", today=TODAY))

    # --- invoices -----------------------------------------------------------------------------------

    @precondition(lambda self: self.exists(Charge, Charge.status == ChargeStatus.OPEN))
    @rule(data=st.data())
    def issue_invoice(self, data):
        patient = self.patient(data)
        ids = [c.id for c in balances.uninvoiced_charges(patient.id)]
        charge_ids = None
        if ids and data.draw(st.booleans(), label="choose charges"):
            charge_ids = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True), label="charges")
        self.invoice(patient, charge_ids)

    @precondition(lambda self: self.exists(Invoice))
    @rule(data=st.data())
    def void_invoice(self, data):
        invoice = self.pick(data, Invoice, Invoice.status != InvoiceStatus.VOID, label="invoice",
                            refusable=[sa.true()])
        if invoice is not None:
            self.attempt(lambda: invoice_service.void_invoice(invoice, "Billed in error", today=TODAY))

    @precondition(lambda self: self.exists(Invoice))
    @rule(data=st.data(), kind=st.sampled_from(list(AdjustmentKind)))
    def adjust(self, data, kind):
        invoice = self.pick(data, Invoice, Invoice.status == InvoiceStatus.OPEN, label="invoice",
                            refusable=[sa.true()])
        if invoice is not None:
            amount = Money(data.draw(self.near(balances.invoice_balance(invoice).cents), label="amount"))
            self.attempt(lambda: payment_service.adjust_invoice(invoice, kind, amount, "Courtesy", today=TODAY))

    # --- payments -----------------------------------------------------------------------------------

    def amount(self, data, patient: Patient, apply_to) -> Money:
        due = balances.patient_summary(patient).due.cents
        kind = data.draw(st.sampled_from(["due", "part", "any", "due", "part", "any", "bad"]), label="amount kind")
        if kind == "due" and apply_to:  # exactly what was chosen
            return Money(max(sum(share.cents for _, share in apply_to), 1))
        if kind == "due" and due:
            return Money(due)
        if kind == "part" and due:
            return Money(data.draw(st.integers(1, due), label="part"))
        if kind == "bad":
            return Money(data.draw(st.sampled_from([0, -1]), label="bad amount"))
        return Money(data.draw(st.integers(1, 120_000), label="amount"))

    def confirm(self, data) -> bool:
        return data.draw(st.sampled_from([True, True, True, False]), label="confirm")

    @rule(data=st.data())
    def pay_by_money_order(self, data):
        patient = self.patient(data)
        apply_to = self.apply_to(data, patient)
        amount, confirm = self.amount(data, patient, apply_to), self.confirm(data)
        self.attempt(lambda: payment_service.record_money_order(
            patient, amount, money_order(), received_date=TODAY, today=TODAY, apply_to=apply_to,
            confirm_overpayment=confirm))

    @rule(data=st.data())
    def pay_by_carecredit(self, data):
        patient = self.patient(data)
        apply_to = self.apply_to(data, patient)
        amount, confirm = self.amount(data, patient, apply_to), self.confirm(data)
        plan = self.catalog[data.draw(st.sampled_from(["12mo", "24mo"]), label="plan")]
        details = payment_service.CareCreditInput(authorization_code="AUTH42", plan=plan, account_last4="4321",
                                                  id_checked=True, receipt_signed=True)
        self.attempt(lambda: payment_service.record_carecredit(
            patient, amount, details, received_date=TODAY, today=TODAY, apply_to=apply_to,
            confirm_overpayment=confirm))

    @precondition(lambda self: self.moved(journal.PATIENT_CREDITS) < 0 and self.exists(Invoice))
    @rule(data=st.data())
    def apply_credit(self, data):
        with_credit = [i for i in self.patient_ids if balances.patient_credit(i).is_positive]
        patient = db.session.get(Patient, data.draw(st.sampled_from(with_credit or self.patient_ids),
                                                    label="patient with credit"))
        invoice = self.pick(data, Invoice, Invoice.patient_id == patient.id, Invoice.status == InvoiceStatus.OPEN,
                            label="invoice", refusable=[sa.true()])
        if invoice is not None:
            credit = balances.patient_credit(patient.id).cents
            amount = data.draw(st.one_of(st.none(), st.integers(-1, credit + 100).map(Money)), label="amount")
            amount = None if amount is not None and data.draw(st.booleans(), label="all that fits") else amount
            self.attempt(lambda: payment_service.apply_credit(patient, invoice, amount, today=TODAY))

    @precondition(lambda self: self.exists(Payment))
    @rule(data=st.data())
    def refund(self, data):
        payment = self.pick(data, Payment, Payment.status.in_(payment_service.SETTLED), label="payment",
                            refusable=[sa.true()])
        for _ in range(data.draw(st.integers(1, 2), label="refunds") if payment is not None else 0):
            refundable = payment.amount_cents - balances.payment_refunded(payment.id).cents  # part, then more
            amount = Money(data.draw(self.near(max(refundable, 0)), label="amount"))
            self.attempt(lambda amount=amount: payment_service.refund_payment(
                payment, amount, "Refund requested", today=TODAY,
                check_number="1001" if payment.method == PaymentMethod.MONEY_ORDER else "",
                return_reference="RTN-1" if payment.method == PaymentMethod.CARECREDIT else ""))

    @precondition(lambda self: self.exists(Payment, Payment.method == PaymentMethod.MONEY_ORDER))
    @rule(data=st.data())
    def return_money_order(self, data):
        mo = Payment.method == PaymentMethod.MONEY_ORDER
        payment = self.pick(data, Payment, mo, Payment.status == PaymentStatus.SUCCEEDED, label="money order",
                            refusable=[mo])
        if payment is not None:
            self.attempt(lambda: payment_service.return_money_order(payment, "Counterfeit", today=TODAY))

    # --- what must always hold -------------------------------------------------------------------------

    def moved(self, code: str) -> int:
        """What this example posted to an account."""
        return (journal.balance(code) - self.baseline[code]).cents

    @invariant()
    def books_agree(self):
        moved = self.accounts_moved()
        self.check_journal(moved)
        self.check_patients(moved)
        self.check_invoices()
        self.check_payments()
        self.check_holding_accounts(moved)
        self.check_packages(moved)
        assert settlement.month_figures_drift() == []  # refusals roll their savepoint back in between

    def accounts_moved(self) -> dict[str, int]:
        totals = dict(db.session.execute(
            sa.select(Account.code, sa.func.sum(JournalLine.amount_cents)).join(JournalLine.account)
            .group_by(Account.code)).all())
        return {code: int(totals.get(code, 0)) - self.baseline[code].cents for code in ACCOUNTS}

    def check_journal(self, moved):
        assert unbalanced_entries() == []
        assert _sum(sa.select(sa.func.sum(JournalLine.amount_cents))) == 0

    def check_patients(self, moved):
        """Per patient: journal receivables − credits is what the invoices and charges say is owed."""
        receivables = credits = 0
        for patient_id in self.patient_ids:
            summary = balances.patient_summary(db.session.get(Patient, patient_id))
            receivable = balances.patient_receivable(patient_id)
            credit = balances.patient_credit(patient_id)
            assert credit >= Money.zero(), "a patient's credit went negative"
            assert receivable == summary.due + summary.uninvoiced
            assert summary.credit == credit
            assert summary.balance == receivable - credit
            assert summary.package_units >= 0
            receivables += receivable.cents
            credits += credit.cents
        assert moved[journal.RECEIVABLES] == receivables
        assert -moved[journal.PATIENT_CREDITS] == credits

    def check_invoices(self):
        """No invoice is paid beyond its total, a void one holds nothing, and the status says what is due."""
        lines = _by_key(InvoiceLine.invoice_id, InvoiceLine.amount_cents)
        paid = _by_key(Allocation.invoice_id, Allocation.amount_cents)
        adjusted = _by_key(Adjustment.invoice_id, Adjustment.amount_cents)
        for invoice_id, status, total in db.session.execute(
                sa.select(Invoice.id, Invoice.status, Invoice.total_cents)):
            assert total == lines.get(invoice_id, 0)
            on_it = paid.get(invoice_id, 0)
            assert on_it >= 0
            if status == InvoiceStatus.VOID:
                assert on_it == 0, "a void invoice still holds payments"
                continue
            due = total - on_it - adjusted.get(invoice_id, 0)
            assert due >= 0, "an invoice is paid beyond its total"
            assert status == (InvoiceStatus.OPEN if due else InvoiceStatus.PAID)
        for status, invoice_status in db.session.execute(
                sa.select(Charge.status, Invoice.status).outerjoin(Invoice, Charge.invoice_id == Invoice.id)):
            if status == ChargeStatus.INVOICED:
                assert invoice_status not in (None, InvoiceStatus.VOID)
            else:
                assert invoice_status is None

    def check_payments(self):
        """Allocations are undone at most once over; refunds and allocations stay within their payment."""
        original = so.aliased(Allocation)
        for amount, undone in db.session.execute(
                sa.select(original.amount_cents, sa.func.coalesce(sa.func.sum(Allocation.amount_cents), 0))
                .outerjoin(Allocation, Allocation.reverses_id == original.id)
                .where(original.reverses_id.is_(None)).group_by(original.id, original.amount_cents)):
            assert amount > 0
            assert 0 <= amount + undone <= amount
        undone = so.aliased(Allocation)
        mismatched = db.session.scalar(
            sa.select(sa.func.count()).select_from(Allocation).join(undone, Allocation.reverses_id == undone.id)
            .where(sa.or_(Allocation.amount_cents >= 0, Allocation.invoice_id != undone.invoice_id,
                          sa.func.coalesce(Allocation.payment_id, 0) != sa.func.coalesce(undone.payment_id, 0))))
        assert mismatched == 0
        refunded = _by_key(Refund.payment_id, Refund.amount_cents)
        returned = _by_key(Refund.payment_id, Refund.amount_cents, Refund.kind == RefundKind.RETURN)
        applied = _by_key(Allocation.payment_id, Allocation.amount_cents)
        for payment_id, status, amount in db.session.execute(
                sa.select(Payment.id, Payment.status, Payment.amount_cents)):
            back, on_invoices = refunded.get(payment_id, 0), applied.get(payment_id, 0)
            assert 0 <= back <= amount
            assert 0 <= on_invoices <= amount
            if status == PaymentStatus.RETURNED:
                assert on_invoices == 0
                assert back == returned.get(payment_id) == amount
            else:
                assert payment_id not in returned
                assert status == {0: PaymentStatus.SUCCEEDED, amount: PaymentStatus.REFUNDED}.get(
                    back, PaymentStatus.PARTIALLY_REFUNDED)

    def check_holding_accounts(self, moved):
        """Each holding account holds exactly what the payments, refunds and adjustments say."""
        def payments_sum(method):
            return _sum(sa.select(sa.func.sum(Payment.amount_cents))
                        .where(Payment.method == method, Payment.status.in_(HELD)))

        def refunds_sum(method, kind):
            return _sum(sa.select(sa.func.sum(Refund.amount_cents)).join(Payment)
                        .where(Payment.method == method, Refund.kind == kind))

        mo, cc = PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT
        # Money orders in the drawer: all but the returned ones (a refund is a clinic check, from the bank).
        assert moved[journal.UNDEPOSITED] == payments_sum(mo)
        assert moved[journal.BANK] == -refunds_sum(mo, RefundKind.REFUND)
        assert moved[journal.CARECREDIT_RECEIVABLE] == payments_sum(cc) - refunds_sum(cc, RefundKind.REFUND)
        assert moved[journal.DISCOUNTS] == _sum(
            sa.select(sa.func.sum(Adjustment.amount_cents)).join(Invoice).where(Invoice.status != InvoiceStatus.VOID))
        revenue = sum(moved[code] for code in set(journal.REVENUE.values()))
        assert revenue == -_sum(sa.select(sa.func.sum(Charge.amount_cents)).where(Charge.status != ChargeStatus.VOID))

    def check_packages(self, moved):
        """Units are never drawn or refunded beyond what was bought; unit refunds add up to their share of the price."""
        unit_refunds = 0
        for purchase in db.session.scalars(sa.select(PackagePurchase)):
            assert balances.package_units_left(purchase) >= 0
            parts = Money(purchase.price_cents).split(purchase.units_bought)
            kept = purchase.units_bought - purchase.units_refunded
            unit_refunds += sum(p.cents for p in parts[kept:])
        assert moved[journal.REFUNDS] == unit_refunds


def _by_key(key, amount, *where) -> dict[int, int]:
    """{key: sum(amount)} over the rows matching `where`."""
    return {k: int(v) for k, v in db.session.execute(
        sa.select(key, sa.func.sum(amount)).where(key.is_not(None), *where).group_by(key))}


def test_the_books_stay_consistent_whatever_the_front_desk_does(app, catalog):
    machine = type("Ledger", (LedgerMachine,), {"catalog": catalog})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
