"""`flask billing ...`: creating users, resetting passwords and seeding the demo clinic."""

import re
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from billing import create_app
from billing.cli import DEMO_CLINIC
from billing.extensions import db
from billing.models import AuditEvent, Invoice, InvoiceStatus, JournalLine, Patient, Role, User
from billing.money import Money
from billing.services import journal
from billing.services.balances import patient_summary
from billing.services.settings import get_settings
from config import TestingConfig
from tests.conftest import PASSWORD

NEW_PASSWORD = "a different long passphrase"
FEW = ["--patients", "3"]  # a little activity keeps these runs fast; one test seeds the default
LOGIN_LINE = re.compile(r"^\s+(?P<role>\S.*?)\s+(?P<email>\S+@\S+)\s+(?P<password>\S+)$", re.M)


def all_users() -> list[User]:
    return db.session.scalars(sa.select(User).order_by(User.id)).all()


def last_event() -> AuditEvent:
    return db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()


def printed_logins(output: str) -> dict[str, str]:
    """{email: password} from the seed-demo output."""
    return {m["email"]: m["password"] for m in LOGIN_LINE.finditer(output)}


# --- create-user ---------------------------------------------------------------------------------


def test_create_user_makes_an_admin_and_audits_it_as_cli(runner):
    result = runner.invoke(args=["billing", "create-user", "Boss@Clinic.test", "--name", "Dana Boss",
                                 "--role", "admin", "--password", PASSWORD])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Created boss@clinic.test (admin)."
    [user] = all_users()
    assert (user.email, user.name, user.roles) == ("boss@clinic.test", "Dana Boss", {Role.ADMIN})
    assert check_password_hash(user.password_hash, PASSWORD)
    event = last_event()
    assert (event.action, event.actor_id, event.actor_label) == ("user.create", None, "cli")
    assert event.entity_id == str(user.id)


def test_create_user_prompts_for_the_password_twice(runner):
    result = runner.invoke(args=["billing", "create-user", "boss@clinic.test", "--name", "Dana Boss",
                                 "--role", "admin", "--role", "bookkeeper"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    [user] = all_users()
    assert user.roles == {Role.ADMIN, Role.BOOKKEEPER}
    assert check_password_hash(user.password_hash, PASSWORD)
    assert PASSWORD not in result.output  # the prompt hides it


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "Error: Use at least 12 characters."),
     ("zzzzzzzzzzzzzzzz", "Error: Use a less repetitive password.")],
)
def test_create_user_refuses_a_weak_password(runner, password, message):
    result = runner.invoke(args=["billing", "create-user", "boss@clinic.test", "--name", "Dana Boss",
                                 "--role", "admin", "--password", password])

    assert result.exit_code != 0
    assert message in result.output
    assert all_users() == []


def test_create_user_refuses_a_taken_email(runner, create_user):
    create_user(Role.FRONTDESK, email="boss@clinic.test")
    result = runner.invoke(args=["billing", "create-user", "BOSS@clinic.test", "--name", "Dana Boss",
                                 "--role", "admin", "--password", PASSWORD])

    assert result.exit_code != 0
    assert "Error: A user with this email already exists." in result.output
    assert len(all_users()) == 1


def test_create_user_needs_a_known_role(runner):
    result = runner.invoke(args=["billing", "create-user", "boss@clinic.test", "--name", "Dana Boss",
                                 "--role", "owner", "--password", PASSWORD])
    assert result.exit_code != 0
    assert "owner" in result.output
    assert all_users() == []


# --- reset-password -------------------------------------------------------------------------------


def test_reset_password_sets_a_new_password(runner, create_user):
    user = create_user(Role.FRONTDESK, email="fox@clinic.test")
    result = runner.invoke(args=["billing", "reset-password", "FOX@clinic.test", "--password", NEW_PASSWORD])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Password reset for fox@clinic.test."
    db.session.refresh(user)
    assert check_password_hash(user.password_hash, NEW_PASSWORD)
    assert not check_password_hash(user.password_hash, PASSWORD)
    assert user.session_epoch == 1
    event = last_event()
    assert (event.action, event.actor_label, event.entity_id) == ("user.password_reset", "cli", str(user.id))


def test_reset_password_refuses_an_unknown_email(runner, create_user):
    create_user(Role.FRONTDESK, email="fox@clinic.test")
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    result = runner.invoke(args=["billing", "reset-password", "nobody@clinic.test", "--password", NEW_PASSWORD])

    assert result.exit_code != 0
    assert "Error: No user with email nobody@clinic.test." in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events


def test_reset_password_refuses_a_weak_password(runner, create_user):
    user = create_user(Role.FRONTDESK, email="fox@clinic.test")
    result = runner.invoke(args=["billing", "reset-password", "fox@clinic.test", "--password", "short"])

    assert result.exit_code != 0
    assert "Error: Use at least 12 characters." in result.output
    db.session.refresh(user)
    assert check_password_hash(user.password_hash, PASSWORD)


# --- seed-demo -------------------------------------------------------------------------------------


def test_seed_demo_fills_settings_and_one_user_per_role(runner):
    result = runner.invoke(args=["billing", "seed-demo", *FEW])

    assert result.exit_code == 0, result.output
    clinic = get_settings()
    assert (clinic.name, clinic.tin, clinic.npi, clinic.timezone) == (
        DEMO_CLINIC["name"], "12-3456789", "1245319599", "America/New_York")
    users = all_users()
    assert sorted(r for u in users for r in u.roles) == sorted(Role)
    assert all(len(u.roles) == 1 and u.active for u in users)

    logins = printed_logins(result.output)
    assert len(logins) == 3
    assert set(logins) == {u.email for u in users}
    for user in users:
        assert check_password_hash(user.password_hash, logins[user.email])
    assert len(set(logins.values())) == 3
    labels = {e.actor_label for e in db.session.scalars(sa.select(AuditEvent))}
    assert labels == {"cli"}


def test_seed_demo_if_empty_on_a_seeded_database_prints_no_password(runner):
    first = runner.invoke(args=["billing", "seed-demo", *FEW])
    passwords = printed_logins(first.output).values()
    assert len(passwords) == 3

    again = runner.invoke(args=["billing", "seed-demo", "--if-empty"])

    assert again.exit_code == 0, again.output
    assert "already present" in again.output
    assert not any(p in again.output for p in passwords)
    assert printed_logins(again.output) == {}
    assert len(all_users()) == 3


def test_seed_demo_if_empty_seeds_an_empty_database(runner):
    result = runner.invoke(args=["billing", "seed-demo", "--if-empty", *FEW])
    assert result.exit_code == 0, result.output
    assert len(printed_logins(result.output)) == 3
    assert len(all_users()) == 3


def test_seed_demo_refuses_a_database_with_users(runner, create_user):
    create_user(Role.ADMIN)
    result = runner.invoke(args=["billing", "seed-demo"])

    assert result.exit_code != 0
    assert "Error: The database already has users; seed-demo only fills an empty database." in result.output
    assert len(all_users()) == 1
    assert get_settings().name == ""


def _seed_fresh_database(tmp_path, name: str, seed: int) -> tuple[dict[str, str], str]:
    """Run seed-demo against a new, migrated SQLite file; return the printed logins and output.

    Each run needs an empty database; the command commits, so it gets one of its own
    rather than a savepoint in the shared test database.
    """
    config = type("SeedConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / name}"})
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
    try:
        result = app.test_cli_runner().invoke(args=["billing", "seed-demo", "--seed", str(seed), *FEW])
        assert result.exit_code == 0, result.output
        return printed_logins(result.output), result.output
    finally:
        with app.app_context():
            db.engine.dispose()


def test_seed_demo_passwords_follow_the_seed(tmp_path):
    first, first_output = _seed_fresh_database(tmp_path, "a.sqlite3", seed=7)
    same, same_output = _seed_fresh_database(tmp_path, "b.sqlite3", seed=7)
    other, _ = _seed_fresh_database(tmp_path, "c.sqlite3", seed=8)

    assert len(first) == 3
    assert same == first
    assert other.keys() == first.keys()
    assert set(other.values()).isdisjoint(first.values())
    assert same_output == first_output  # the same activity too


def test_seed_demo_default_activity_keeps_the_books_balanced(runner):
    result = runner.invoke(args=["billing", "seed-demo"])

    assert result.exit_code == 0, result.output
    counts = re.search(r"Seeded (\d+) patients, (\d+) charges, (\d+) invoices, (\d+) payments over 3 months\.",
                       result.output)
    assert counts, result.output
    assert int(counts[1]) == 40 and all(int(n) > 40 for n in counts.groups()[1:])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 40
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)
                             .where(Invoice.status == InvoiceStatus.OPEN)) > 0

    unbalanced = db.session.execute(
        sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
        .having(sa.func.sum(JournalLine.amount_cents) != 0)
    ).all()
    assert unbalanced == []
    summaries = [patient_summary(p) for p in db.session.scalars(sa.select(Patient))]
    owed = sum((s.due + s.uninvoiced for s in summaries), Money.zero())
    credit = sum((s.credit for s in summaries), Money.zero())
    assert credit.is_positive  # an overpayment kept as credit
    assert journal.balance(journal.RECEIVABLES) == owed
    assert journal.balance(journal.RECEIVABLES) + journal.balance(journal.PATIENT_CREDITS) == sum(
        (s.balance for s in summaries), Money.zero())
    assert {e.actor_label for e in db.session.scalars(sa.select(AuditEvent))} == {"cli"}


# --- export -------------------------------------------------------------------------------------------


@pytest.fixture
def march_activity(app):
    """Two patients' charges, invoices and money orders in March 2026, and one charge in February."""
    from billing.services import charges as charge_service, invoices as invoice_service, payments as payment_service
    from billing.services import patients as patient_service
    from billing.models import MoneyOrderIssuer, Service, ServiceCategory
    from datetime import date

    service = Service(code="KET-INF", name="Ketamine infusion", cpt_code="96365", category=ServiceCategory.INFUSION,
                      default_price_cents=45000)
    db.session.add(service)
    today = date(2026, 3, 20)
    for n, day in enumerate((date(2026, 2, 27), date(2026, 3, 3), date(2026, 3, 9))):
        patient = patient_service.create_patient({"first_name": "Sam", "last_name": f"Rivera{n}",
                                                  "date_of_birth": date(1980, 5, 17)}, today=today)
        charge_service.post_charge(patient, charge_service.ChargeInput(service=service, date_of_service=day),
                                   today=today)
        invoice_service.issue_invoice(patient, today=day)
        payment_service.record_money_order(
            patient, Money.parse("100"), payment_service.MoneyOrderInput(
                issuer=MoneyOrderIssuer.USPS, serial=f"7700000{n}", purchaser="Sam Rivera", id_seen=True,
                signed_in_front_of_staff=True, security_features_checked=True),
            received_date=day, today=today)
    db.session.flush()


def test_export_beancount_writes_the_period_with_progress(runner, march_activity, tmp_path):
    out = tmp_path / "march.beancount"
    result = runner.invoke(args=["billing", "export", "beancount", "--from", "2026-03-01", "--to", "2026-03-31",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 4 journal entries from 2026-03-01 to 2026-03-31 as Beancount" in result.output
    assert "Exporting 4 journal entries" in result.output  # the progress bar's label
    text = out.read_text()
    assert text.count(" * \"") == 4 and "2026-02-27 *" not in text
    assert "2026-04-01 balance Assets:PatientReceivables  700.00 USD" in text  # 2 × $450 − 2 × $100


def test_export_quickbooks_writes_one_row_per_journal_line(runner, march_activity, tmp_path):
    out = tmp_path / "march.csv"
    result = runner.invoke(args=["billing", "export", "quickbooks", "--from", "2026-02-01", "--to", "2026-03-31",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "Journal No,Journal Date,Account,Debits,Credits,Description,Name"
    assert len(lines) == 1 + 6 * 2  # six entries of two lines each
    assert sum(1 for line in lines if ",Patient receivables,450.00,," in line) == 3


def test_export_refuses_a_range_backwards_and_writes_nothing(runner, tmp_path):
    out = tmp_path / "x.csv"
    result = runner.invoke(args=["billing", "export", "quickbooks", "--from", "2026-03-31", "--to", "2026-03-01",
                                 "-o", str(out)])
    assert result.exit_code != 0
    assert "--from 2026-03-31 is after --to 2026-03-01" in result.output
    assert not out.exists()
    bad = runner.invoke(args=["billing", "export", "beancount", "--from", "March", "--to", "2026-03-01",
                              "-o", str(out)])
    assert bad.exit_code != 0 and "'March' does not match the format '%Y-%m-%d'" in bad.output


from tests.services.conftest import catalog, make_patient  # noqa: E402,F401  (fixtures of the month below)
from tests.services.test_reconciliation import march  # noqa: E402,F401  (March 2026 built through the services)


def test_report_reconciliation_writes_csv_and_pdf(runner, march, tmp_path):
    import csv
    import io

    out = tmp_path / "march.csv"
    result = runner.invoke(args=["billing", "report", "reconciliation", "--month", "2026-03", "--format", "csv",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote the reconciliation for 2026-03 as CSV" in result.output and "Not tied" not in result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["Section", "Item", "Count", "Amount", "Detail"]
    assert ["Card", "Settled", "", "600.00", ""] in rows and ["CareCredit", "Fees", "", "238.40", ""] in rows
    pdf = tmp_path / "march.pdf"
    result = runner.invoke(args=["billing", "report", "reconciliation", "--month", "2026-03", "--format", "pdf",
                                 "-o", str(pdf)])
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    bad = runner.invoke(args=["billing", "report", "reconciliation", "--month", "03/2026", "--format", "csv",
                              "-o", str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "'03/2026' is not a month; write it YYYY-MM" in bad.output
    assert not (tmp_path / "x.csv").exists()


# --- carecredit import ---------------------------------------------------------------------------------

FUNDING_CSV = Path(__file__).resolve().parent / "samples" / "carecredit_funding.csv"


def _funding_counts() -> tuple[int, int, int]:
    from billing.models import CareCreditFunding, CareCreditFundingLine, JournalEntry

    db.session.expire_all()
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (CareCreditFunding, CareCreditFundingLine, JournalEntry))


@pytest.fixture
def carecredit_payments(app, make_patient):
    """Our CareCredit payments for four of the sample's five charges (305664, $600, not taken here),
    each at its promotion's fee."""
    from datetime import date

    from billing.models import CareCreditPlan
    from billing.services import payments as payment_service

    plans = {code: CareCreditPlan(name=f"Plan {code}", months=12, merchant_fee_bps=bps)
             for code, bps in {"DI06": 790, "STD": 590, "DI12": 1190, "DI24": 1590}.items()}
    db.session.add_all(plans.values())
    db.session.flush()
    for code, dollars, day, promo in [("042817", "1850.00", date(2025, 3, 3), "DI06"),
                                      ("042933", "320.00", date(2025, 3, 3), "STD"),
                                      ("117402", "4200.00", date(2025, 3, 11), "DI12"),
                                      ("305118", "2750.00", date(2025, 3, 20), "DI24")]:
        details = payment_service.CareCreditInput(authorization_code=code, plan=plans[promo], account_last4="4417",
                                                  id_checked=True, receipt_signed=True)
        payment_service.record_carecredit(make_patient(), Money.parse(dollars), details, received_date=day,
                                          today=date(2025, 4, 1), confirm_overpayment=True)
    db.session.commit()


def test_carecredit_import_posts_the_fundings_and_prints_what_matched(runner, carecredit_payments):
    entries_before = _funding_counts()[2]
    result = runner.invoke(args=["billing", "carecredit", "import", str(FUNDING_CSV)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Posted 3 fundings: CCF250304A ($2,004.97), CCF250313A ($3,700.20), CCF250325A ($2,865.35).",
        "  CCF250304A 03/04/2025 net $2,004.97: 2 of 2 charges matched to payments.",
        "  CCF250313A 03/13/2025 net $3,700.20: 1 of 1 charge matched to payments.",
        "  CCF250325A 03/25/2025 net $2,865.35: 1 of 2 charges matched to payments.",
        "1 charge matched no CareCredit payment of ours: see Unmatched CareCredit in the books.",
    ]
    assert _funding_counts() == (3, 5, entries_before + 3)
    assert journal.balance(journal.FINANCING_FEES) == Money.parse("1149.48")  # 165.03 + 499.80 + 484.65
    assert {(e.action, e.actor_label) for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("carecredit.%")))} == {("carecredit.funding_posted", "cli")}

    again = runner.invoke(args=["billing", "carecredit", "import", str(FUNDING_CSV)])
    assert again.exit_code == 0, again.output
    assert again.output.strip() == ("3 fundings were already posted and left unchanged: CCF250304A, CCF250313A, "
                                    "CCF250325A.")
    assert _funding_counts() == (3, 5, entries_before + 3)


@pytest.mark.parametrize("old, new, message", [
    ("1850.00", "18x0.00", "Line 2, column "),  # the first line: nothing of the file is posted
    ("03/25/2025,CCF250325A,5348120000770912,03/21/2025", "03/25/2025,CCF250325A,5348120000770912,03/41/2025",
     "Line 6, column "),  # the last line: the fundings before it are not posted either
])
def test_carecredit_import_refuses_a_malformed_file_naming_the_line_and_writes_nothing(
        runner, carecredit_payments, tmp_path, old, new, message):
    text = FUNDING_CSV.read_text()
    assert text.count(old) == 1
    broken = tmp_path / "funding.csv"
    broken.write_text(text.replace(old, new))
    before = _funding_counts()
    result = runner.invoke(args=["billing", "carecredit", "import", str(broken)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}"), result.output
    assert before == _funding_counts() == (0, 0, before[2])
    binary = tmp_path / "funding.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00")
    result = runner.invoke(args=["billing", "carecredit", "import", str(binary)])
    assert result.exit_code == 1 and "is not a text CSV file" in result.output
    assert _funding_counts() == before
