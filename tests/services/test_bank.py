"""Bank statements: the three sample files read alike, imports are all or nothing and once per file,
credits are suggested to the payouts, deposit batches and CareCredit fundings they settled, and a
person's confirmation is recorded (never twice for one line or one target)."""

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.integrations.bank_files import BankFileError, parse_bank_file
from billing.models import (
    AuditEvent, BankLine, BankMatchKind, BankStatement, CareCreditFunding, DepositBatch, DepositStatus, JournalLine,
    StripePayout,
)
from billing.services import ServiceError, bank, payouts
from billing.services import fundings as fundings_service

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
OFX1, OFX2, CSV = (SAMPLES / name for name in ("bank_statement.ofx", "bank_statement_ofx220.ofx", "bank_statement.csv"))
PO1, PO2 = "po_1g488RKc7MxL2vQ96St7MuWi", "po_18KhJ6Kc7MxL2vQ9OnSHIndB"
CREDITS = [(date(2025, 3, 4), 200497), (date(2025, 3, 7), 42500), (date(2025, 3, 11), 167377),
           (date(2025, 3, 13), 370020), (date(2025, 3, 18), 172413), (date(2025, 3, 20), 874230),
           (date(2025, 3, 21), 42000), (date(2025, 3, 25), 286535)]
DEBITS = [-650000, -128460, -1842055, -521218, -1839010, -519877, -3000]


@pytest.mark.parametrize("path", [OFX1, OFX2, CSV], ids=["ofx102", "ofx220", "chase-csv"])
def test_each_sample_file_gives_the_same_fifteen_rows(path):
    parsed = parse_bank_file(path.read_bytes())
    rows = sorted((r.posted_on, r.amount_cents, r.description) for r in parsed.rows)
    reference = sorted((r.posted_on, r.amount_cents, r.description) for r in parse_bank_file(OFX1.read_bytes()).rows)
    assert rows == reference
    assert len(rows) == 15
    assert sorted((d, a) for d, a, _ in rows if a > 0) == CREDITS
    assert sorted(a for _, a, _ in rows if a < 0) == sorted(DEBITS)
    assert sum(a for _, a, _ in rows) == 3_101_952 - 6_450_000  # ledger balance less the opening 64,500.00
    assert parsed.ledger_balance_cents == 3_101_952
    assert (parsed.period_start or date.min) <= date(2025, 3, 3) and parsed.period_end == date(2025, 3, 31)
    assert parsed.file_format == {OFX1: "ofx1", OFX2: "ofx2", CSV: "csv"}[path]
    assert parsed.account_ref == ("" if path == CSV else "****9377")
    assert len({r.fitid for r in parsed.rows}) == 15


def test_csv_ids_are_stable_and_count_identical_rows():
    text = ("Date,Description,Debit,Credit\n03/11/2025,STRIPE TRANSFER,,1673.77\n"
            "03/12/2025,FEE,5.00,\n03/12/2025,FEE,5.00,\n")
    first, again = parse_bank_file(text.encode()), parse_bank_file(text.replace("\n", "\r\n").encode())
    assert [r.amount_cents for r in first.rows] == [167377, -500, -500]
    assert [r.fitid for r in first.rows] == [r.fitid for r in again.rows]
    assert len({r.fitid for r in first.rows}) == 3


@pytest.mark.parametrize("path, old, new, message", [
    (OFX1, b"<TRNAMT>1673.77", b"<TRNAMT>1,673.77",
     r"^Line 78 \(transaction 5, FITID 2025031109100548\): TRNAMT '1,673.77' is not valid"),
    (OFX1, b"<DTPOSTED>20250311120000", b"<DTPOSTED>20251311120000",
     r"^Line 77 \(transaction 5, FITID 2025031109100548\): DTPOSTED '20251311"),
    (OFX1, b"<FITID>2025031109100548\r\n", b"", r"^Line 75 \(transaction 5\): the FITID element is missing"),
    (OFX1, b"<TRNTYPE>SRVCHG", b"<TRNTYPE>FOO", r"^Line 156 \(transaction 15, FITID 2025033109101918\): TRNTYPE"),
    (OFX1, b"<BALAMT>31019.52", b"<BALAMT>abc", r"^Line 164: BALAMT 'abc' is not valid"),
    (OFX1, b"OFXHEADER:100", b"OFXHEADR:100", r"^Line 1: the OFX header is malformed"),
    (OFX1, b"<CURDEF>USD", b"<CURDEF>EUR", r"^Line 34: the statement is in EUR"),
    (OFX2, b"<TRNAMT>1673.77</TRNAMT>", b"<TRNAMT>1673.77</TRNAM>", r"^Line 70: a closing tag does not match"),
    (CSV, b"1724.13", b"17x24.13", r"^Line 8, column Amount: '17x24.13' is not an amount"),
    (CSV, b"03/18/2025", b"18/03/2025", r"^Line 8, column Posting Date: '18/03/2025' is not a date"),
    (CSV, b"Posting Date", b"When", r"^Line 1: the column Posting Date \(or Date\) is missing"),
])
def test_a_malformed_file_is_refused_naming_the_line_and_nothing_is_written(app, path, old, new, message):
    content = path.read_bytes()
    assert old in content
    with pytest.raises(ServiceError, match=message) as info:
        bank.import_statement(path.name, content.replace(old, new, 1))
    assert info.value.field == "statement_file" and "Nothing was imported." in info.value.message
    assert _count(BankStatement) == _count(BankLine) == 0


def test_a_binary_or_empty_file_is_refused(app):
    for content in (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", b"", b"Details,Posting Date,Description,Amount\n"):
        with pytest.raises(ServiceError):
            bank.import_statement("x", content)
    assert _count(BankStatement) == 0


def test_import_stores_every_line_once_and_refuses_the_same_file_again(app):
    result = bank.import_statement("march.ofx", OFX1.read_bytes())
    assert (result.added, result.skipped) == (15, 0)
    statement = result.statement
    assert (statement.file_format, statement.account_ref, statement.ledger_balance_cents) == ("ofx1", "****9377", 3101952)
    assert statement.period_start == date(2025, 3, 1) and statement.period_end == date(2025, 3, 31)
    assert db.session.scalar(sa.select(sa.func.sum(BankLine.amount_cents))) == -3_348_048
    assert _audits("bank.statement_imported") == 1

    with pytest.raises(ServiceError, match=r"already imported on .* as statement #"):
        bank.import_statement("again.ofx", OFX1.read_bytes())
    # The same transactions in OFX 2.2 are a different file, but every line is known by its FITID.
    with pytest.raises(ServiceError, match="All 15 lines of this file were already imported"):
        bank.import_statement("march-v2.ofx", OFX2.read_bytes())
    assert (_count(BankStatement), _count(BankLine)) == (1, 15)

    # A later download overlapping the month adds only its new line.
    later = OFX2.read_bytes().replace(b"<FITID>2025033109101918</FITID>", b"<FITID>2025040109109999</FITID>")
    second = bank.import_statement("overlap.ofx", later)
    assert (second.added, second.skipped) == (1, 14)
    assert (_count(BankStatement), _count(BankLine)) == (2, 16)


def _lines() -> list[tuple]:
    return sorted(db.session.execute(sa.select(BankLine.account_ref, BankLine.posted_on, BankLine.amount_cents)).all())


@pytest.mark.parametrize("first, second", [(OFX1, CSV), (CSV, OFX1), (OFX2, CSV)], ids=["ofx-then-csv", "csv-then-ofx",
                                                                                     "ofx220-then-csv"])
def test_the_ofx_and_the_csv_of_the_same_month_store_its_lines_once(app, first, second):
    result = bank.import_statement(first.name, first.read_bytes(), account_last4="9377")
    assert (result.added, result.skipped, result.statement.account_ref) == (15, 0, "****9377")
    stored = _lines()
    with pytest.raises(ServiceError, match=rf"^All 15 lines of this file were already imported from {first.name} "
                                           r"\(account \*\*\*\*9377\); nothing was added\.$") as info:
        bank.import_statement(second.name, second.read_bytes(), account_last4="9377")
    assert info.value.field == "statement_file"
    assert (_count(BankStatement), _count(BankLine)) == (1, 15)
    assert _lines() == stored and {ref for ref, _, _ in stored} == {"****9377"}


def test_a_csv_is_refused_without_its_account_and_stores_the_account_given(app):
    for last4 in ("", "93", "93a7", "12345"):
        with pytest.raises(ServiceError, match="last 4 digits of the bank account") as info:
            bank.import_statement("march.csv", CSV.read_bytes(), account_last4=last4)
        assert info.value.field == "account_last4"
    assert (_count(BankStatement), _count(BankLine)) == (0, 0)
    assert bank.last_account_last4() == ""

    statement = bank.import_statement("march.csv", CSV.read_bytes(), account_last4=" 9377 ").statement
    assert statement.account_ref == "****9377"
    assert bank.last_account_last4() == "9377"
    # An OFX file names its account: what was typed is not used.
    ofx = bank.import_statement("other.ofx", OFX1.read_bytes().replace(b"<ACCTID>4820019377", b"<ACCTID>4820015555"),
                                account_last4="9377")
    assert (ofx.added, ofx.statement.account_ref) == (15, "****5555")
    assert bank.last_account_last4() == "5555"
    # The same rows from another account are that account's lines.
    csv_other = CSV.read_bytes().replace(b"MONTHLY SERVICE FEE", b"MONTHLY FEE")
    assert bank.import_statement("other.csv", csv_other, account_last4="1234").added == 15
    assert [ref for ref, in db.session.execute(sa.select(BankStatement.account_ref).order_by(BankStatement.id))] == [
        "****9377", "****5555", "****1234"]


def test_overlapping_csv_and_ofx_add_only_the_new_lines_and_name_those_already_there(app):
    header, *rows = CSV.read_text().splitlines(keepends=True)
    early = "".join([header, *rows[-5:]])  # March 3 to 11, oldest five (the file is newest first)
    first = bank.import_statement("early-march.csv", early.encode(), account_last4="9377")
    assert (first.added, first.skipped) == (5, 0)

    result = bank.import_statement("march.ofx", OFX1.read_bytes())
    assert (result.added, result.skipped) == (10, 5)
    assert [(s.posted_on, s.amount.cents, s.filename) for s in result.already] == [
        (date(2025, 3, 3), -650000, "early-march.csv"), (date(2025, 3, 4), 200497, "early-march.csv"),
        (date(2025, 3, 7), 42500, "early-march.csv"), (date(2025, 3, 10), -128460, "early-march.csv"),
        (date(2025, 3, 11), 167377, "early-march.csv")]
    assert result.message() == (
        "Imported 10 lines from march.ofx. 5 lines were already imported from early-march.csv and left as they "
        "were: 2025-03-03 -$6,500.00 OAKWOOD PLAZA LLC RENT MAR 2025 WEB PMT; 2025-03-04 $2,004.97 SYNCHRONY BANK "
        "CARECREDIT MERCH DEP CCF250304A 0912; 2025-03-07 $425.00 DEPOSIT ID NUMBER 557130; 2025-03-10 -$1,284.60 "
        "HENRY SCHEIN INC 03/08 MELVILLE NY CARD 4821; 2025-03-11 $1,673.77 STRIPE TRANSFER ST-W9UZ8ZJFMLWJ "
        "LAKESIDE INFUSION CLINIC.")
    assert (_count(BankStatement), _count(BankLine)) == (2, 15)
    assert sorted((d, a) for _, d, a in _lines() if a > 0) == CREDITS
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bank.statement_imported")
                               .order_by(AuditEvent.id)).all()
    assert [(e.changes["lines"], e.changes["skipped"], e.changes["account"]) for e in audit] == [
        (5, 0, "****9377"), (10, 5, "****9377")]

    # The full CSV afterwards: nothing new, and the message names both earlier files.
    with pytest.raises(ServiceError, match="already imported from march.ofx and early-march.csv "):
        bank.import_statement("march.csv", CSV.read_bytes(), account_last4="9377")
    assert _count(BankLine) == 15


def test_identical_csv_rows_count_as_many_times_as_the_account_holds_them(app):
    fees = "Date,Description,Amount\n03/12/2025,WIRE FEE,-15.00\n03/12/2025,WIRE FEE,-15.00\n"
    assert bank.import_statement("two.csv", fees.encode(), account_last4="9377").added == 2
    three = fees + "03/12/2025,wire  fee,-15.00\n03/13/2025,WIRE FEE,-15.00\n"
    result = bank.import_statement("three.csv", three.encode(), account_last4="9377")
    assert (result.added, result.skipped) == (2, 2)
    assert _count(BankLine) == 4
    # Two identical OFX transactions (two FITIDs) against one stored CSV row: one of them is new.
    ofx = OFX1.read_bytes()
    fee = b"<STMTTRN>\r\n<TRNTYPE>SRVCHG\r\n<DTPOSTED>20250331120000.000[-4:EDT]"
    assert fee in ofx
    twice = ofx.replace(fee, fee.replace(b"<STMTTRN>", b"<STMTTRN>\r\n<TRNTYPE>SRVCHG\r\n<DTPOSTED>20250331"
                                                      b"\r\n<TRNAMT>-30.00\r\n<FITID>X1\r\n<NAME>MONTHLY SERVICE FEE"
                                                      b"\r\n</STMTTRN>\r\n<STMTTRN>", 1), 1)
    assert bank.import_statement("fee.csv", b"Date,Description,Amount\n03/31/2025,MONTHLY SERVICE FEE,-30.00\n",
                                 account_last4="9377").added == 1
    result = bank.import_statement("march.ofx", twice)
    assert (result.added, result.skipped) == (15, 1)


# --- matching ----------------------------------------------------------------------------------


@pytest.fixture
def month(app):
    """March 2025 on our side: the two Stripe payouts (imported from Stripe's report), two deposited
    money-order batches (rows as the deposit pages leave them), the three CareCredit fundings (imported
    from CareCredit's report), and batches that must not be suggested."""
    payouts.import_reconciliation_csv((SAMPLES / "stripe_payout_reconciliation_itemized.csv").read_text())
    batches = {
        "DEP-2025-0001": DepositBatch(number="DEP-2025-0001", status=DepositStatus.DEPOSITED, total_cents=42500,
                                      deposited_on=date(2025, 3, 6), bank_reference="557130"),
        "DEP-2025-0002": DepositBatch(number="DEP-2025-0002", status=DepositStatus.DEPOSITED, total_cents=42000,
                                      deposited_on=date(2025, 3, 21)),
        # Not suggested: still open, and one deposited too long before the bank line of the same amount.
        "DEP-2025-0003": DepositBatch(number="DEP-2025-0003", status=DepositStatus.OPEN, total_cents=42000),
        "DEP-2025-0004": DepositBatch(number="DEP-2025-0004", status=DepositStatus.DEPOSITED, total_cents=42500,
                                      deposited_on=date(2025, 2, 28)),
    }
    # The CareCredit fundings from CareCredit's funding report, through the fundings service.
    fundings_service.import_funding_csv((SAMPLES / "carecredit_funding.csv").read_text(), today=date(2025, 4, 1))
    fundings = {f.reference: f for f in db.session.scalars(sa.select(CareCreditFunding))}
    assert {ref: f.net_cents for ref, f in fundings.items()} == {
        "CCF250304A": 200497, "CCF250313A": 370020, "CCF250325A": 286535}
    db.session.add_all(batches.values())
    db.session.flush()
    statement = bank.import_statement("march.ofx", OFX1.read_bytes()).statement
    payout = {p.payout_id: p for p in db.session.scalars(sa.select(StripePayout))}
    return {"statement": statement, "payout": payout, "batch": batches, "funding": fundings,
            "line": {(line.posted_on, line.amount_cents): line for line in bank.lines_of(statement)}}


def _pairs(found: dict, month) -> dict:
    by_id = {line.id: line for line in month["line"].values()}
    return {(by_id[i].posted_on.isoformat(), by_id[i].amount_cents): [t.label for t in targets]
            for i, targets in found.items()}


def test_each_credit_is_suggested_exactly_what_it_settled(month):
    found = bank.suggestions(bank.lines_of(month["statement"]))
    assert _pairs(found, month) == {
        ("2025-03-04", 200497): ["CareCredit funding CCF250304A"],
        ("2025-03-07", 42500): ["Deposit batch DEP-2025-0001"],
        ("2025-03-11", 167377): [f"Stripe payout {PO1}"],
        ("2025-03-13", 370020): ["CareCredit funding CCF250313A"],
        ("2025-03-18", 172413): [f"Stripe payout {PO2}"],
        ("2025-03-20", 874230): [],  # the IRS refund settles nothing of ours
        ("2025-03-21", 42000): ["Deposit batch DEP-2025-0002"],
        ("2025-03-25", 286535): ["CareCredit funding CCF250325A"],
    }


def test_confirming_records_who_and_when_and_posts_nothing(month, create_user):
    line = month["line"][(date(2025, 3, 11), 167377)]
    payout = month["payout"][PO1]
    journal_lines = _count(JournalLine)

    target = bank.confirm(line, "stripe_payout", payout.id)

    assert target.label == f"Stripe payout {PO1}"
    db.session.expire_all()
    line = db.session.get(BankLine, line.id)
    assert (line.match_kind, line.match_id) == (BankMatchKind.STRIPE_PAYOUT, payout.id)
    assert line.matched_at is not None
    assert _count(JournalLine) == journal_lines  # matching only proves arrival
    assert _audits("bank.line_matched") == 1
    # Matched on either side, it is no longer suggested nor listed as unmatched.
    assert bank.suggestions([line]) == {}
    assert line not in bank.unmatched_lines(month["statement"])
    assert PO1 not in {t.label.split()[-1] for t in bank.unmatched_targets()}
    assert bank.describe_match(line) == f"Stripe payout {PO1}"


def test_the_unmatched_lists_on_both_sides(month):
    for (day, cents), (kind, target) in {
        (date(2025, 3, 4), 200497): ("carecredit_funding", month["funding"]["CCF250304A"]),
        (date(2025, 3, 7), 42500): ("deposit_batch", month["batch"]["DEP-2025-0001"]),
        (date(2025, 3, 11), 167377): ("stripe_payout", month["payout"][PO1]),
    }.items():
        bank.confirm(month["line"][(day, cents)], kind, target.id)
    assert [(line.posted_on.isoformat(), line.amount_cents) for line in bank.unmatched_lines()] == [
        ("2025-03-13", 370020), ("2025-03-18", 172413), ("2025-03-20", 874230), ("2025-03-21", 42000),
        ("2025-03-25", 286535)]
    assert [t.label for t in bank.unmatched_targets()] == [
        "Deposit batch DEP-2025-0004", "CareCredit funding CCF250313A", f"Stripe payout {PO2}",
        "Deposit batch DEP-2025-0002", "CareCredit funding CCF250325A"]
    assert [t.label for t in bank.unmatched_targets(date(2025, 3, 1), date(2025, 3, 15))] == [
        "CareCredit funding CCF250313A"]


@pytest.mark.parametrize("case", ["line matched", "target matched", "debit", "amount", "too far", "not deposited",
                                  "no such target", "bad kind"])
def test_refused_matches_change_nothing(month, case):
    line = month["line"][(date(2025, 3, 7), 42500)]
    batch = month["batch"]["DEP-2025-0001"]
    kind, target_id, expect = "deposit_batch", batch.id, ""
    if case == "line matched":
        bank.confirm(line, kind, target_id)
        target_id, expect = month["batch"]["DEP-2025-0004"].id, "already matched to Deposit batch DEP-2025-0001"
    elif case == "target matched":
        other = month["line"][(date(2025, 3, 21), 42000)]
        db.session.add(BankLine(statement_id=other.statement_id, fitid="X-425", posted_on=date(2025, 3, 8),
                                amount_cents=42500, description="DEPOSIT"))
        db.session.flush()
        bank.confirm(line, kind, target_id)
        line = db.session.scalar(sa.select(BankLine).where(BankLine.fitid == "X-425"))
        expect = "already matched to the bank line of 2025-03-07"
    elif case == "debit":
        line, expect = month["line"][(date(2025, 3, 3), -650000)], "Only money coming in"
    elif case == "amount":
        line, expect = month["line"][(date(2025, 3, 4), 200497)], "a match must be for the same amount"
    elif case == "too far":
        target_id, expect = month["batch"]["DEP-2025-0004"].id, "more than 3 days"
    elif case == "not deposited":
        target_id, expect = month["batch"]["DEP-2025-0003"].id, "not marked deposited"
    elif case == "no such target":
        target_id, expect = 999_999, "There is no deposit batch #999999"
    else:
        kind, expect = "cheque", "not something a bank line can be matched to"
    before = _snapshot()
    with pytest.raises(ServiceError, match=expect):
        bank.confirm(line, kind, target_id)
    assert _snapshot() == before


def test_unmatch_frees_both_sides_and_is_audited(month):
    line = month["line"][(date(2025, 3, 25), 286535)]
    funding = month["funding"]["CCF250325A"]
    bank.confirm(line, BankMatchKind.CARECREDIT_FUNDING, funding.id)
    bank.unmatch(line)
    db.session.expire_all()
    line = db.session.get(BankLine, line.id)
    assert (line.match_kind, line.match_id, line.matched_at, line.matched_by_id) == (None, None, None, None)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "bank.line_unmatched"))
    assert event.changes["was"] == "CareCredit funding CCF250325A" and event.entity_id == str(line.id)
    assert [t.label for t in bank.suggestions([line])[line.id]] == ["CareCredit funding CCF250325A"]
    with pytest.raises(ServiceError, match="not matched"):
        bank.unmatch(line)


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _audits(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _snapshot() -> list[tuple]:
    return [tuple(row) for row in db.session.execute(
        sa.select(BankLine.id, BankLine.match_kind, BankLine.match_id, BankLine.matched_at).order_by(BankLine.id))] + [
        (_count(AuditEvent), _count(JournalLine))]


def test_parse_error_type_is_a_value_error():
    with pytest.raises(BankFileError):
        parse_bank_file(b"Date,Description,Amount\n")


def test_a_line_imported_meanwhile_by_someone_else_is_refused_cleanly(app, monkeypatch):
    """The check for known FITIDs ran before a twin import committed: the unique key refuses the second."""
    bank.import_statement("march.ofx", OFX1.read_bytes())
    monkeypatch.setattr(bank, "_new_rows", lambda rows, account_ref, csv: (rows, []))
    with pytest.raises(ServiceError, match="imported by someone else a moment ago"):
        bank.import_statement("march-v2.ofx", OFX2.read_bytes())
    monkeypatch.undo()
    assert (_count(BankStatement), _count(BankLine)) == (1, 15)


@pytest.mark.parametrize("variant", ["qfx", "lf", "credit-card"])
def test_common_ofx_variants_read_the_same(variant):
    content = OFX1.read_bytes()
    if variant == "qfx":  # Quicken's QFX: Intuit's elements in the sign-on
        content = content.replace(b"</FI>\r\n", b"</FI>\r\n<INTU.BID>3000\r\n<INTU.USERID>clinic\r\n")
    elif variant == "lf":
        content = content.replace(b"\r\n", b"\n")
    else:
        for old, new in [(b"BANKMSGSRSV1>", b"CREDITCARDMSGSRSV1>"), (b"STMTTRNRS>", b"CCSTMTTRNRS>"),
                         (b"<STMTRS>", b"<CCSTMTRS>"), (b"</STMTRS>", b"</CCSTMTRS>"),
                         (b"<BANKACCTFROM>\r\n<BANKID>123456780\r\n", b"<CCACCTFROM>\r\n"),
                         (b"<ACCTTYPE>CHECKING\r\n</BANKACCTFROM>", b"</CCACCTFROM>")]:
            assert old in content
            content = content.replace(old, new)
    parsed = parse_bank_file(content)
    assert [(r.fitid, r.posted_on, r.amount_cents, r.description) for r in parsed.rows] == [
        (r.fitid, r.posted_on, r.amount_cents, r.description) for r in parse_bank_file(OFX1.read_bytes()).rows]
    assert parsed.account_ref == "****9377"


def test_a_batch_deposited_through_the_deposit_service_is_suggested_and_confirmed(make_patient, pay_mo):
    """Money orders taken at the desk, batched and marked deposited, then seen on the bank's CSV."""
    from billing.services import deposits
    from tests.services.conftest import TODAY

    patient = make_patient()
    payments = [pay_mo(patient, dollars, confirm=True) for dollars in ("150.00", "200.00", "75.00")]
    batch = deposits.create_batch([p.id for p in payments], today=TODAY)
    deposits.mark_deposited(batch, TODAY, "557130", today=TODAY)
    csv_text = (f"Date,Description,Amount\n{TODAY:%m/%d/%Y},DEPOSIT ID NUMBER 557130,425.00\n"
                f"{TODAY:%m/%d/%Y},DEPOSIT ID NUMBER 557131,425.01\n")
    statement = bank.import_statement("desk.csv", csv_text.encode(), account_last4="9377").statement
    assert statement.account_ref == "****9377"
    line, other = bank.lines_of(statement)
    found = bank.suggestions([line, other])
    assert [(t.kind, t.id, t.amount.cents) for t in found[line.id]] == [(BankMatchKind.DEPOSIT_BATCH, batch.id, 42500)]
    assert found[other.id] == []
    assert bank.confirm(line, "deposit_batch", batch.id).label == f"Deposit batch {batch.number}"
    assert bank.unmatched_targets() == []
