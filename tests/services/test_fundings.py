"""CareCredit fundings recorded by hand and imported from the funding report, matched to our
CareCredit payments, posted once each, and reported (fees against the plan, late fundings, either
side unmatched), with the sample in tests/samples (its README gives the expected totals)."""

import csv
import io
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.integrations.carecredit_csv import MalformedFundingReport, parse_fundings
from billing.models import CareCreditFunding, CareCreditFundingLine, CareCreditPlan, JournalEntry
from billing.money import Money
from billing.services import ServiceError, fundings, journal
from billing.services import payments as payment_service
from tests.services.conftest import close_month, refused, unbalanced_entries

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "carecredit_funding.csv"
CSV_TEXT = SAMPLE.read_text(encoding="utf-8")
CSV_ROWS = list(csv.DictReader(io.StringIO(CSV_TEXT)))
TODAY = date(2026, 3, 16)
# The plan fees the sample's promo codes were charged at (README: 5.9 %, 7.9 %, 11.9 %, 15.9 %).
PLAN_BPS = {"STD": 590, "DI06": 790, "DI12": 1190, "DI24": 1590}
UNFUNDED = ("500.00", "777001", date(2025, 3, 27))  # taken after the last funding: CareCredit still owes it


def dollars(text: str) -> Money:
    """An amount from the sample, computed apart from the code under test (Decimal, never float)."""
    return Money(int(Decimal(text) * 100))


def total(column: str, reference: str | None = None) -> Money:
    return sum((dollars(r[column]) for r in CSV_ROWS if reference in (None, r["funding_reference"])), Money.zero())


def us_date(text: str) -> date:
    month, day, year = (int(part) for part in text.split("/"))
    return date(year, month, day)


@pytest.fixture
def plans(app):
    made = {code: CareCreditPlan(name=f"Plan {code}", months=12, merchant_fee_bps=bps) for code, bps in PLAN_BPS.items()}
    db.session.add_all(made.values())
    db.session.flush()
    return made


@pytest.fixture
def take(make_patient, plans):
    """Record a CareCredit payment as the front desk would (kept as the patient's credit)."""

    def make(dollars_: str, code: str, day: date, promo: str = "DI12"):
        details = payment_service.CareCreditInput(authorization_code=code, plan=plans[promo], account_last4="4417",
                                                  id_checked=True, receipt_signed=True)
        return payment_service.record_carecredit(make_patient(), Money.parse(dollars_), details, received_date=day,
                                                 today=TODAY, confirm_overpayment=True)

    return make


@pytest.fixture
def sample_payments(take):
    """Our payments for the sample's charges (taken on each transaction date at its promo's plan),
    and one more CareCredit has not funded yet."""
    taken = {r["authorization_code"]: take(r["gross_amount"], r["authorization_code"], us_date(r["transaction_date"]),
                                           r["promo_code"]) for r in CSV_ROWS}
    taken["unfunded"] = take(UNFUNDED[0], UNFUNDED[1], UNFUNDED[2])
    return taken


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (CareCreditFunding, CareCreditFundingLine, JournalEntry))


def by_reference(reference: str) -> CareCreditFunding:
    return db.session.scalars(sa.select(CareCreditFunding).where(CareCreditFunding.reference == reference)).one()


def entry_lines(funding: CareCreditFunding) -> dict[str, Money]:
    entries = journal.entries_for(funding)
    assert len(entries) == 1 and entries[0].entry_date == funding.funded_on
    return {line.account.code: Money(line.amount_cents) for line in entries[0].lines}


def test_the_sample_posts_three_fundings_and_matches_every_charge(sample_payments):
    receivable_before = journal.balance(journal.CARECREDIT_RECEIVABLE)
    assert receivable_before == total("gross_amount") + dollars(UNFUNDED[0])

    result = fundings.import_funding_csv(CSV_TEXT, today=TODAY)

    assert [f.reference for f in result.posted] == ["CCF250304A", "CCF250313A", "CCF250325A"]
    assert result.message().startswith("Posted 3 fundings: CCF250304A ($2,004.97), CCF250313A ($3,700.20)")
    # The README's totals, and the same computed from the file's rows.
    assert (total("gross_amount"), total("merchant_fee"), total("net_amount")) == (
        Money(972000), Money(114948), Money(857052))
    assert journal.balance(journal.BANK) == total("net_amount") == Money(857052)
    assert journal.balance(journal.FINANCING_FEES) == total("merchant_fee") == Money(114948)
    # What is left in CareCredit receivable is exactly what CareCredit has not funded.
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == dollars(UNFUNDED[0])
    assert fundings.unfunded_total() == (1, dollars(UNFUNDED[0]))
    assert unbalanced_entries() == []

    for reference, funded_on in (("CCF250304A", date(2025, 3, 4)), ("CCF250313A", date(2025, 3, 13)),
                                 ("CCF250325A", date(2025, 3, 25))):
        funding = by_reference(reference)
        assert funding.funded_on == funded_on and funding.source == "csv"
        assert (funding.gross_cents, funding.fee_cents, funding.net_cents) == (
            total("gross_amount", reference).cents, total("merchant_fee", reference).cents,
            total("net_amount", reference).cents)
        assert entry_lines(funding) == {journal.BANK: total("net_amount", reference),
                                        journal.FINANCING_FEES: total("merchant_fee", reference),
                                        journal.CARECREDIT_RECEIVABLE: -total("gross_amount", reference)}
    lines = db.session.scalars(sa.select(CareCreditFundingLine).order_by(CareCreditFundingLine.id)).all()
    assert [(line.authorization_code, line.payment_id) for line in lines] == [
        (r["authorization_code"], sample_payments[r["authorization_code"]].id) for r in CSV_ROWS]
    assert lines[0].transaction_date == date(2025, 3, 3) and lines[0].promo_code == "DI06"

    summaries = {s.funding.reference: s for s in fundings.summaries()}
    assert {ref: (s.lines, s.matched, s.fee_difference, s.late) for ref, s in summaries.items()} == {
        "CCF250304A": (2, 2, Money(0), 0), "CCF250313A": (1, 1, Money(0), 0), "CCF250325A": (2, 2, Money(0), 0)}
    assert fundings.unmatched_lines() == []
    [unfunded] = fundings.unfunded_payments(today=date(2025, 3, 28))
    assert (unfunded.payment_id, unfunded.amount, unfunded.overdue) == (
        sample_payments["unfunded"].id, Money(50000), False)
    assert fundings.unfunded_payments(today=date(2025, 4, 2))[0].overdue  # Thu 3/27 + Fri, Mon, Tue, Wed


def test_a_funding_short_by_a_wrong_plan_fee_is_flagged_with_the_difference(sample_payments):
    # CareCredit charged 12.9 % on the 12-month charge where the plan (and our payment) says 11.9 %.
    short = CSV_TEXT.replace("4200.00,499.80,3700.20", "4200.00,541.80,3658.20")
    fundings.import_funding_csv(short, today=TODAY)

    expected = Money(int((Decimal("4200.00") * Decimal("0.119")).quantize(Decimal("0.01"), ROUND_HALF_UP) * 100))
    assert expected == Money(49980)
    funding = by_reference("CCF250313A")
    [report] = fundings.line_reports(funding)
    assert report.payment_id == sample_payments["117402"].id and report.fee_bps == 1190
    assert (report.expected_fee, Money(report.line.fee_cents), report.fee_difference) == (
        expected, Money(54180), Money(4200))
    summaries = {s.funding.reference: s.fee_difference for s in fundings.summaries()}
    assert summaries == {"CCF250304A": Money(0), "CCF250313A": Money(4200), "CCF250325A": Money(0)}
    assert journal.balance(journal.BANK) == total("net_amount") - Money(4200)
    assert journal.balance(journal.FINANCING_FEES) == total("merchant_fee") + Money(4200)
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == dollars(UNFUNDED[0])


def test_expected_fees_round_half_up_to_the_cent(take):
    payment = take("15.00", "HALF01", date(2025, 3, 3), promo="STD")  # 15.00 × 5.9 % = 0.885
    funding = fundings.record_funding(fundings.FundingInput(
        reference="CCF-HALF", funded_on=date(2025, 3, 4), net=Money.parse("14.11"),
        lines=[fundings.LineInput("half01", Money.parse("15.00"), Money.parse("0.89"))]), today=TODAY)
    [report] = fundings.line_reports(funding)
    assert report.payment_id == payment.id
    assert (report.expected_fee, report.fee_difference) == (Money(89), Money(0))


def test_a_funding_more_than_three_business_days_after_the_payment_is_late(take):
    wednesday = date(2025, 3, 5)
    on_time = take("100.00", "LATE01", wednesday)
    late = take("200.00", "LATE02", wednesday)
    first = fundings.record_funding(fundings.FundingInput(  # Thu, Fri, Mon: the third business day
        reference="CCF-MON", funded_on=date(2025, 3, 10), net=Money.parse("88.10"),
        lines=[fundings.LineInput("LATE01", Money.parse("100.00"), Money.parse("11.90"))]), today=TODAY)
    second = fundings.record_funding(fundings.FundingInput(  # Tuesday: the fourth
        reference="CCF-TUE", funded_on=date(2025, 3, 11), net=Money.parse("176.20"),
        lines=[fundings.LineInput("LATE02", Money.parse("200.00"), Money.parse("23.80"))]), today=TODAY)
    [a], [b] = fundings.line_reports(first), fundings.line_reports(second)
    assert (a.payment_id, a.business_days, a.late) == (on_time.id, 3, False)
    assert (b.payment_id, b.business_days, b.late) == (late.id, 4, True)
    assert {s.funding.reference: s.late for s in fundings.summaries()} == {"CCF-MON": 0, "CCF-TUE": 1}
    assert first.source == "manual" and entry_lines(second) == {
        journal.BANK: Money(17620), journal.FINANCING_FEES: Money(2380), journal.CARECREDIT_RECEIVABLE: Money(-20000)}


def test_importing_the_same_file_again_changes_nothing(sample_payments):
    fundings.import_funding_csv(CSV_TEXT, today=TODAY)
    before = counts(), journal.balance(journal.BANK)
    again = fundings.import_funding_csv(CSV_TEXT.replace("\n", "\r\n"), today=TODAY)
    assert again.posted == [] and len(again.already_posted) == 3
    assert again.message() == ("3 fundings were already posted and left unchanged: CCF250304A, CCF250313A, "
                               "CCF250325A.")
    assert (counts(), journal.balance(journal.BANK)) == before == ((3, 5, 3 + 6), Money(857052))


def test_a_reference_posted_with_other_figures_refuses_the_whole_file(sample_payments):
    fundings.import_funding_csv(CSV_TEXT.split("03/13/2025")[0].rsplit("\n", 1)[0] + "\n", today=TODAY)
    assert counts()[0] == 1
    changed = CSV_TEXT.replace("320.00,18.88,301.12", "320.00,18.89,301.11")
    before = counts()
    with refused("report", r"^Line 2: funding CCF250304A is already posted as 03/04/2025, 2 charges, net "
                           r"\$2,004.97; this file has 03/04/2025, 2 charges, net \$2,004.96. Nothing was imported.$"):
        fundings.import_funding_csv(changed, today=TODAY)
    assert counts() == before


@pytest.mark.parametrize("edit, message", [
    (("1850.00,146.15", "18S0.00,146.15"), "Line 2, column gross_amount: '18S0.00' is not an amount in dollars"),
    (("4200.00,499.80,3700.20", "4200.00,499.80,3700.00"),
     "Line 4, column net_amount: 3700.00 is not gross 4200.00 less fee 499.80."),
    (("03/25/2025,CCF250325A,5348120000770912,03/21", "03/26/2025,CCF250325A,5348120000770912,03/21"),
     "Line 6, column funding_date: funding CCF250325A is dated 03/25/2025 on line 5, here 03/26/2025."),
    (("CC202503210005,305664", "CC202503210005,305118"),
     "Line 6, column authorization_code: 305118 is also on line 5; a charge is funded once."),
    (("03/13/2025,CCF250313A", "13/03/2025,CCF250313A"), "Line 4, column funding_date: '13/03/2025' is not a date"),
    (("CC202503200004,305118,", "CC202503200004,,"), "Line 5, column authorization_code: the value is empty."),
])
def test_a_malformed_file_is_refused_naming_the_line_and_nothing_is_imported(sample_payments, edit, message):
    broken = CSV_TEXT.replace(*edit)
    assert broken != CSV_TEXT
    with refused("report", None) as info:
        fundings.import_funding_csv(broken, today=TODAY)
    assert info.value.message.startswith(message), info.value.message
    assert counts() == (0, 0, 6)


def test_files_that_cannot_be_fundings_are_refused(app):
    for text, message in (("", "The file is empty"),
                          ("funding_date,authorization_code,gross_amount\n", "Line 1: the column two of"),
                          ("funding_date,auth code,gross,fee\n", "The file has a header but no rows"),
                          ('funding_date,auth_code,gross,fee\n03/04/2025,"042817,1.00,0.10\n', "Line 2")):
        with pytest.raises(ServiceError) as info:
            fundings.import_funding_csv(text, today=TODAY)
        assert info.value.field == "report" and info.value.message.startswith(message), info.value.message


def test_common_variants_of_the_report_read_the_same():
    variant = ("\ufeffFunding Ref,Funding Date,Trans Date,Auth Code,Promo,Paid Amount,Fees\r\n"
               '"CCF250304A","2025-03-04","2025-03-03","042817","DI06","$1,850.00","-146.15"\r\n'
               '"CCF250304A","2025-03-04","2025-03-03","042933","STD","$320.00","(18.88)"\r\n'
               "\r\n"
               '"CCF250313A","3/13/25","3/11/25","117402","DI12","4,200.00","499.80"\r\n')
    [first, second] = parse_fundings(variant)
    assert (first.reference, first.funded_on, first.gross, first.fee, first.net) == (
        "CCF250304A", date(2025, 3, 4), total("gross_amount", "CCF250304A"), total("merchant_fee", "CCF250304A"),
        total("net_amount", "CCF250304A"))
    assert (second.funded_on, second.net, second.lines[0].line, second.lines[0].transaction_date) == (
        date(2025, 3, 13), Money(370020), 5, date(2025, 3, 11))
    # Without a funding reference, one date's lines are one funding.
    [by_date] = parse_fundings("Deposit Date,Authorization Number,Gross Amount,Net Amount\n"
                               "03/04/2025,042817,1850.00,1703.85\n03/04/2025,042933,320.00,301.12\n"
                               "Total,,2170.00,2004.97\n")
    assert (by_date.reference, by_date.fee) == ("CC20250304", Money(16503))
    with pytest.raises(MalformedFundingReport, match="Line 1: the columns funding_date, authorization_code"):
        parse_fundings("date,code,gross,net\n")


def test_a_payment_is_funded_once_and_leading_zeros_dropped_by_a_spreadsheet_still_match(sample_payments):
    first = fundings.record_funding(fundings.FundingInput(
        reference="CCF-ONE", funded_on=date(2025, 3, 4), net=Money.parse("1703.85"),
        lines=[fundings.LineInput("42817", Money.parse("1850.00"), Money.parse("146.15"))]), today=TODAY)
    assert first.lines[0].payment_id == sample_payments["042817"].id
    again = fundings.record_funding(fundings.FundingInput(
        reference="CCF-TWO", funded_on=date(2025, 3, 5), net=Money.parse("1703.85"),
        lines=[fundings.LineInput("042817", Money.parse("1850.00"), Money.parse("146.15"))]), today=TODAY)
    assert again.lines[0].payment_id is None
    [unmatched] = fundings.unmatched_lines()
    assert (unmatched.reference, unmatched.line.authorization_code) == ("CCF-TWO", "042817")
    # A code we hold with another amount is not a match either.
    other = fundings.record_funding(fundings.FundingInput(
        reference="CCF-AMT", funded_on=date(2025, 3, 5), net=Money.parse("300.00"),
        lines=[fundings.LineInput("042933", Money.parse("320.01"), Money.parse("20.01"))]), today=TODAY)
    assert other.lines[0].payment_id is None
    unfunded = {p.authorization_code for p in fundings.unfunded_payments(today=TODAY)}
    assert unfunded == {"042933", "117402", "305118", "305664", "777001"}


@pytest.mark.parametrize("change, field, message", [
    ({"net": Money.parse("2004.96")}, "net", r"The deposit \$2,004.96 is not gross \$2,170.00 less fees \$165.03"),
    ({"net": Money.parse("2004.96"), "fee": Money.parse("165.04")}, "net", "The charges add up to gross"),
    ({"reference": "  "}, "reference", "Enter the funding reference"),
    ({"funded_on": date(2026, 3, 17)}, "funded_on", "cannot be in the future"),
    ({"lines": []}, "lines", "Enter at least one charge"),
    ({"lines": [fundings.LineInput("042817", Money.parse("1850.00"), Money.parse("146.15")),
                fundings.LineInput("042817", Money.parse("320.00"), Money.parse("18.88"))]}, "lines",
     "Charge 2: authorization code 042817 is entered twice"),
    ({"lines": [fundings.LineInput("042817", Money.parse("1850.00"), Money.parse("146.15")),
                fundings.LineInput("", Money.parse("320.00"), Money.parse("18.88"))]}, "lines",
     "Charge 2: enter the authorization code"),
])
def test_a_manual_funding_that_does_not_add_up_is_refused(sample_payments, change, field, message):
    data = {"reference": "CCF250304A", "funded_on": date(2025, 3, 4), "net": Money.parse("2004.97"),
            "lines": [fundings.LineInput("042817", Money.parse("1850.00"), Money.parse("146.15")),
                      fundings.LineInput("042933", Money.parse("320.00"), Money.parse("18.88"))], **change}
    with refused(field, message):
        fundings.record_funding(fundings.FundingInput(**data), today=TODAY)
    assert counts() == (0, 0, 6)


def test_a_reference_is_recorded_once_and_never_into_a_closed_month(sample_payments):
    data = fundings.FundingInput(reference="ccf250304a", funded_on=date(2025, 3, 4), net=Money.parse("2004.97"),
                                 lines=[fundings.LineInput("042817", Money.parse("1850.00"), Money.parse("146.15")),
                                        fundings.LineInput("042933", Money.parse("320.00"), Money.parse("18.88"))])
    assert fundings.record_funding(data, today=TODAY).reference == "CCF250304A"
    with refused("reference", "Funding CCF250304A was already recorded"):
        fundings.record_funding(data, today=TODAY)
    with refused("report", "Line 2: funding CCF250304A is already posted"):  # the file has the 3rd charge too
        fundings.import_funding_csv(CSV_TEXT.replace("146.15,1703.85", "146.16,1703.84"), today=TODAY)
    close_month(date(2025, 3, 1))
    with refused("report", "^Line 4: funding CCF250313A: The books for March 2025 are closed"):
        fundings.import_funding_csv(CSV_TEXT, today=TODAY)
    assert counts() == (1, 2, 7)


def test_a_payment_recorded_after_its_funding_is_matched_when_asked(take):
    fundings.import_funding_csv(CSV_TEXT, today=TODAY)
    assert len(fundings.unmatched_lines()) == 5
    bank = journal.balance(journal.BANK)
    late_entry = take("4200.00", "117402", date(2025, 3, 11))
    assert fundings.rematch_unmatched() == 1
    [line] = db.session.scalars(
        sa.select(CareCreditFundingLine).where(CareCreditFundingLine.authorization_code == "117402")).all()
    assert line.payment_id == late_entry.id
    assert len(fundings.unmatched_lines()) == 4 and fundings.rematch_unmatched() == 0
    assert journal.balance(journal.BANK) == bank  # the funding was posted in full when imported
    # The payment took 4,200.00 into CareCredit receivable; the funding took every charge out of it.
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == Money(420000) - total("gross_amount")


def test_what_carecredit_still_owes_is_the_receivable_after_a_return(sample_payments):
    fundings.import_funding_csv(CSV_TEXT, today=TODAY)
    payment_service.refund_payment(sample_payments["unfunded"], Money.parse("120.00"), "Treatment not given",
                                   today=TODAY, return_reference="RT-0001")
    [unfunded] = fundings.unfunded_payments(today=TODAY)
    assert (unfunded.amount, unfunded.owed) == (Money(50000), Money(38000))
    assert fundings.unfunded_total() == (1, Money(38000)) == (1, journal.balance(journal.CARECREDIT_RECEIVABLE))
