"""The journal exported: a Beancount file that bean-check accepts and whose balances are the app's
trial balance, and a QuickBooks Online journal import CSV whose entries balance."""

import csv
import io
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from beancount import loader
from beancount.core import data, realization

from billing.exports import beancount as beancount_export
from billing.exports import journal_rows
from billing.exports import quickbooks as quickbooks_export
from billing.exports.names import default_beancount_name, export_names, names_by_id, set_export_names
from billing.extensions import db
from billing.models import AccountType, AdjustmentKind, JournalEntry, JournalLine, Patient
from billing.money import Money
from billing.reports.trial_balance import trial_balance
from billing.services import ServiceError
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import journal
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, money_order

BEAN_CHECK = Path(sys.executable).with_name("bean-check")
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


@pytest.fixture
def month(catalog, make_patient, charge, pay_mo, pay_cc):
    """February's invoice, then a March of charges, money orders, CareCredit, a refund, a return,
    a write-off and a voided charge."""
    ava, ben = make_patient("Ava"), make_patient("Ben")
    charge(ava, day=date(2026, 2, 20))
    invoice_service.issue_invoice(ava, today=date(2026, 2, 20))
    payment_service.record_money_order(ava, Money.parse("100"), money_order(serial="55500001"), received_date=date(2026, 2, 21),
                                       today=TODAY)
    charge(ava, "addl", day=date(2026, 3, 2))
    inv = invoice_service.issue_invoice(ava, today=date(2026, 3, 2))
    pay_cc(ava, "500")
    charge(ben, day=date(2026, 3, 5))
    ben_invoice = invoice_service.issue_invoice(ben, today=date(2026, 3, 5))
    paid = pay_mo(ben, "300")
    bounced = pay_mo(ben, "100")
    payment_service.refund_payment(paid, Money.parse("25"), 'Overcharged "by mistake"', today=TODAY,
                                   check_number="2001")
    payment_service.return_money_order(bounced, "Stopped by the purchaser", today=TODAY)
    payment_service.adjust_invoice(ben_invoice, AdjustmentKind.COURTESY, Money.parse("20"), "Courtesy",
                                   today=TODAY)
    stray = charge(ben, "addl", day=date(2026, 3, 10))
    charge_service.void_charge(stray, "Entered twice", today=TODAY)
    return inv


def export(start, end, **kw) -> str:
    return "".join(beancount_export.lines(start, end, **kw))


def beancount_balances(path: Path) -> dict[str, Decimal]:
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    root = realization.realize([e for e in entries if not isinstance(e, data.Balance)])
    balances = {}
    for account in realization.iter_children(root):
        if account.account and account.account.count(":"):
            position = account.balance.get_currency_units("USD")
            balances[account.account] = position.number
    return balances


def app_balances(as_of: date, since: date | None = None) -> dict[str, Decimal]:
    names = {n.code: n.beancount_name for n in export_names()}
    return {names[r.code]: r.balance.to_decimal() for r in trial_balance(as_of, since=since)}


def test_the_beancount_export_passes_bean_check_and_ties_to_the_trial_balance(month, tmp_path):
    path = tmp_path / "march.beancount"
    path.write_text(export(*MARCH, opening_balances=True))

    check = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    balances = beancount_balances(path)
    expected = app_balances(MARCH[1])
    assert {k: v for k, v in balances.items() if v} == {k: v for k, v in expected.items() if v}
    assert balances["Assets:PatientReceivables"] == journal.balance(journal.RECEIVABLES).to_decimal()
    # $450 in February; in March $150 + $450, and $150 posted then voided.
    assert balances["Income:Revenue:Infusions"] == Decimal("-1050.00")


def test_without_opening_balances_the_file_holds_the_months_movements(month, tmp_path):
    path = tmp_path / "march.beancount"
    path.write_text(export(*MARCH))
    assert subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True).returncode == 0
    balances = beancount_balances(path)
    movements = app_balances(MARCH[1], since=MARCH[0])
    assert {k: v for k, v in balances.items() if v} == {k: v for k, v in movements.items() if v}
    text = path.read_text()
    assert "2026-02-20" not in text.split("open")[-1]  # February's entries are not in it
    assert '"Refund of money order payment' in text and '\\"by mistake\\"' not in text  # refunds describe the payment


def test_a_balance_assertion_that_does_not_hold_fails_bean_check(month, tmp_path):
    """The export's own balance assertions are what bean-check verifies: a tampered line is caught."""
    text = export(*MARCH)
    tampered = text.replace("  Assets:UndepositedFunds  300.00 USD", "  Assets:UndepositedFunds  310.00 USD\n"
                            "  Assets:Bank  -10.00 USD", 1)
    assert tampered != text
    path = tmp_path / "tampered.beancount"
    path.write_text(tampered)
    check = subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True, text=True)
    assert check.returncode != 0 and "Balance failed" in check.stdout + check.stderr


def test_mapped_account_names_are_used(month, tmp_path):
    bank = next(n for n in export_names() if n.code == journal.BANK)
    assert bank.beancount_name == "Assets:Bank"
    set_export_names({bank.account_id: ("Assets:Bank:Checking-1234", "Checking (1234)")})
    text = export(*MARCH)
    assert "open Assets:Bank:Checking-1234 USD" in text and "Assets:Bank " not in text
    path = tmp_path / "mapped.beancount"
    path.write_text(text)
    assert subprocess.run([str(BEAN_CHECK), str(path)], capture_output=True).returncode == 0
    assert "Checking (1234)" in "".join(quickbooks_export.lines(*MARCH))


def test_default_names_derive_from_type_and_name():
    assert default_beancount_name(AccountType.INCOME, "Revenue: infusions") == "Income:Revenue:Infusions"
    assert default_beancount_name(AccountType.LIABILITY, "Patient credits") == "Liabilities:PatientCredits"
    assert default_beancount_name(AccountType.INCOME, "Discounts and write-offs") == "Income:DiscountsAndWriteOffs"


def test_bad_or_duplicate_names_are_refused_and_change_nothing(app):
    names = {n.code: n for n in export_names()}
    bank, undeposited = names[journal.BANK], names[journal.UNDEPOSITED]
    with pytest.raises(ServiceError) as bad:
        set_export_names({bank.account_id: ("Assets:bank", "")})
    assert bad.value.field == f"beancount-{bank.account_id}" and "capital letter" in bad.value.message
    with pytest.raises(ServiceError) as dup:
        set_export_names({bank.account_id: ("", "Checking"), undeposited.account_id: ("", "checking")})
    assert dup.value.field.startswith("quickbooks-") and "same Quickbooks name" in dup.value.message
    with pytest.raises(ServiceError) as clash:
        set_export_names({undeposited.account_id: ("Assets:Bank", "")})
    assert clash.value.field == f"beancount-{undeposited.account_id}"
    assert [(n.beancount, n.quickbooks) for n in export_names()] == [("", "")] * len(names)


def test_the_quickbooks_csv_balances_per_entry_and_ties_to_the_movements(month):
    text = "".join(quickbooks_export.lines(*MARCH))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["Journal No", "Journal Date", "Account", "Debits", "Credits", "Description", "Name"]
    per_entry: dict[str, Decimal] = defaultdict(Decimal)
    per_account: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert bool(row["Debits"]) != bool(row["Credits"])
        assert row["Journal Date"].startswith("03/") and row["Journal Date"].endswith("/2026")
        signed = Decimal(row["Debits"] or "0") - Decimal(row["Credits"] or "0")
        per_entry[row["Journal No"]] += signed
        per_account[row["Account"]] += signed
    assert set(per_entry.values()) == {Decimal("0")}
    movements = {r.name: r.balance.to_decimal() for r in trial_balance(MARCH[1], since=MARCH[0]) if r.balance}
    assert {k: v for k, v in per_account.items() if v} == movements
    assert len(per_entry) == len({r["Journal No"] for r in rows}) >= 10


def test_the_quickbooks_name_is_the_patients_account_number_on_the_lines_about_one(month):
    rows = list(csv.DictReader(io.StringIO("".join(quickbooks_export.lines(*MARCH)))))
    named = Counter((row["Journal No"], row["Account"], row["Name"]) for row in rows if row["Name"])
    names = {account_id: n.quickbooks_name for account_id, n in names_by_id().items()}
    expected = Counter(
        (f"JE{entry_id}", names[account_id], account_number)
        for entry_id, account_id, account_number in db.session.execute(
            sa.select(JournalLine.entry_id, JournalLine.account_id, Patient.account_number)
            .join(JournalEntry).join(Patient, Patient.id == JournalLine.patient_id)
            .where(JournalEntry.entry_date.between(*MARCH))))
    assert named == expected
    assert len({name for _, _, name in named}) == 2 and all(name.startswith("P") for _, _, name in named)
    assert not any("Sam" in row["Name"] for row in rows)  # patients' names stay in the clinic
    receivable = names[journal.account_id(journal.RECEIVABLES)]
    assert all(row["Name"] for row in rows if row["Account"] == receivable)
    revenue = {names[journal.account_id(code)] for code in journal.REVENUE.values()}
    assert {row["Name"] for row in rows if row["Account"] in revenue} == {""}  # revenue lines name no patient
    assert sum(1 for row in rows if not row["Name"]) == len(rows) - sum(expected.values()) > 0


def test_batches_of_any_size_give_the_same_file(month, monkeypatch):
    """Entries are read in batches (constant memory); an entry split across two batches stays whole."""
    whole = export(*MARCH)
    for size in (1, 2, 3):
        monkeypatch.setattr(journal_rows, "BATCH", size)
        assert export(*MARCH) == whole
        assert "".join(quickbooks_export.lines(*MARCH)).count("\r\n") == 1 + sum(
            len(e.lines) for e in journal_rows.entries(*MARCH))
