"""Bulk demo data for benchmarks: patients, charges, invoices, payments and their journal, by the million.

This is NOT a service. It writes rows directly, through the database driver (executemany on SQLite,
COPY on PostgreSQL), to fill an empty clinic with months of activity in minutes instead of the hours
the services would take one request at a time. It writes only what the services would have written
for the same events, so the books read the same afterwards:

- per patient and month, `VISITS_PER_MONTH` visits on random days: an infusion (first hour, a CRPS
  infusion or a booster), sometimes an additional hour and the ketamine by the 10 mg, each charge
  posted on its date of service (Receivables / revenue by category), invoiced the same day
  (numbered per year, gap-free, as `numbering` would);
- one payment per visit, by card (Stripe side succeeded), money order (unique issuer and serial) or
  CareCredit (plan and its fee rate), on the visit day or up to ten days later (never after
  `today`): most pay the invoice in full, some pay about half (the invoice stays open), a few
  overpay to the next $50 (the rest is the patient's credit); each payment allocated to its invoice
  and posted as the services post it (holding account / Receivables / Patient credits);
- the bookkeeper's side, as billing.demo plays it through the services: each card payment is one
  Stripe balance transaction (charge, fee 2.9 % + 30c) in the weekly payout that arrives on the first
  Tuesday at least two days after it (the previous week's charges); money orders on hand go in a
  deposit batch on Thursdays (DEP-YYYY-NNNN), deposited the next day; CareCredit funds each charge
  two business days after it (one funding a day, CCyyyymmdd, a line per charge at its plan's rate).
  Each payout, deposit and funding is posted once as the services post it (Merchant fees and Bank /
  Stripe clearing, Bank / Undeposited funds, Bank and Financing fees / CareCredit receivable).
  Settlement dated after `today` has not happened: those payments stay in their clearing account (a
  batch made but not yet deposited stays open);
- each payment's stored figures as of the end of the month it was received in (recon_* columns, as
  billing.services.settlement defines them: what had settled by then, what was in transit, the fees,
  what it left in its clearing account) and cleared_on, the day its settlement took it out of its
  clearing account (None while in transit), computed as the rows are built (no query); and, once at
  the end, account_month_totals from the journal by the GROUP BY of journal.post's upsert, and
  payment_month_figures from the payments by settlement.month_figures_query;
- the counters (account numbers, invoice and deposit numbers) moved past what was used.

Payouts, batches and fundings are written when their first payment is, with zero totals (payments come
patient by patient, settlement day by day); their totals, deposit numbers (in date order) and journal
entries are written at the end, so only the finished seed ties out. Left out, on purpose: audit events,
receipts, refunds, adjustments, disputes, daily closes. Ids are taken from each table's sequence in
blocks (PostgreSQL) or after the largest id (SQLite).

Deterministic for a given seed, `today`, size and existing data. Commits every `COMMIT_EVERY`
payments (it is a command-line tool, not a request); raises ValueError when the clinic already has
patients (bulk data only goes into an empty clinic) or the catalog lacks a service it uses.
"""

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from billing.demo import BATCH_WEEKDAY, FIRST_NAMES, FUNDING_AFTER, LAST_NAMES, PAYOUT_WEEKDAY, STREETS
from billing.extensions import db
from billing.models import (
    CareCreditPlan, ClinicSettings, Counter, DepositStatus, Patient, Payment, PaymentMethod, Provider,
    Service,
)
from billing.models.patients import search_key
from billing.services import journal, settlement
from billing.services.numbering import format_number
from billing.services.payments import RECEIVED_INTO

VISITS_PER_MONTH = 2
COMMIT_EVERY = 100_000  # payments per transaction
VISITS_PER_CHUNK = 10_000  # rows are built and written this many visits at a time
METHODS = (PaymentMethod.CARD, PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT)
METHOD_WEIGHTS = (50, 30, 20)
ISSUERS = ("usps", "western_union", "moneygram")
BRANDS = ("visa", "mastercard", "amex", "discover")
PAYOUT_AFTER_DAYS = 2  # a charge is in the first Tuesday payout at least this many days after it


def stripe_fee(gross: int) -> int:
    """Stripe's fee on a card charge, in cents: 2.9 % rounded half up, plus 30 cents (as billing.demo)."""
    return (gross * 29 + 500) // 1000 + 30


def plan_fee(gross: int, fee_bps: int) -> int:
    """CareCredit's fee on a charge at its plan's rate, rounded half up (what the reconciliation expects)."""
    return (gross * fee_bps + 5000) // 10000


# The column order of every row this module writes (every NOT NULL column is given: no defaults apply).
COLUMNS = {
    "patients": ("id", "account_number", "first_name", "last_name", "search_name", "date_of_birth", "email",
                 "phone", "address_line1", "address_line2", "city", "state", "postal_code", "archived",
                 "created_at"),
    "invoices": ("id", "patient_id", "number", "status", "issue_date", "issued_at", "issued_by_id", "total_cents",
                 "void_reason", "created_at"),
    "charges": ("id", "patient_id", "service_id", "provider_id", "date_of_service", "units", "unit_price_cents",
                "price_reason", "discount_cents", "amount_cents", "icd10_codes", "status", "invoice_id",
                "void_reason", "created_at"),
    "invoice_lines": ("id", "invoice_id", "charge_id", "date_of_service", "description", "code", "units",
                      "unit_price_cents", "discount_cents", "amount_cents"),
    "payments": ("id", "patient_id", "method", "status", "amount_cents", "received_date", "note", "created_at",
                 "recon_refunded_cents", "recon_refund_count", "recon_settled_cents", "recon_in_transit_cents",
                 "recon_fee_cents", "recon_expected_fee_cents", "recon_clearing_cents", "cleared_on"),
    "card_details": ("payment_id", "idempotency_key", "payment_intent_id", "charge_id", "invoice_id", "channel",
                     "brand", "last4", "failure_message"),
    "money_order_details": ("payment_id", "issuer", "serial", "purchaser", "id_seen", "signed_in_front_of_staff",
                            "security_features_checked"),
    "carecredit_details": ("payment_id", "authorization_code", "plan_id", "merchant_fee_bps", "account_last4",
                           "id_checked", "receipt_signed"),
    "allocations": ("id", "patient_id", "payment_id", "invoice_id", "amount_cents", "created_at"),
    "stripe_payouts": ("id", "payout_id", "amount_cents", "fee_cents", "arrival_date", "source", "posted",
                       "created_at"),
    "stripe_balance_transactions": ("id", "transaction_id", "payout_id", "payment_id", "type", "reporting_category",
                                    "source_id", "charge_id", "payment_intent_id", "gross_cents", "fee_cents",
                                    "net_cents", "available_on", "description"),
    "deposit_batches": ("id", "number", "status", "total_cents", "created_at", "created_by_id", "deposited_on",
                        "bank_reference", "deposited_by_id"),
    "deposit_batch_items": ("id", "batch_id", "payment_id", "released_on"),
    "carecredit_fundings": ("id", "reference", "funded_on", "gross_cents", "fee_cents", "net_cents", "source",
                            "created_at", "created_by_id"),
    "carecredit_funding_lines": ("id", "funding_id", "authorization_code", "transaction_date", "promo_code",
                                 "gross_cents", "fee_cents", "net_cents", "payment_id"),
    "journal_entries": ("id", "entry_date", "posted_at", "description", "source_type", "source_id"),
    "journal_lines": ("id", "entry_id", "account_id", "patient_id", "amount_cents"),
}
# Parents before children (foreign keys are enforced on both databases).
ORDER = ("patients", "invoices", "charges", "invoice_lines", "payments", "card_details", "money_order_details",
         "carecredit_details", "allocations", "stripe_payouts", "stripe_balance_transactions", "deposit_batches",
         "deposit_batch_items", "carecredit_fundings", "carecredit_funding_lines", "journal_entries", "journal_lines")
# Rows given chunk-local ids, offset when written...
ID_TABLES = ("patients", "invoices", "charges", "invoice_lines", "payments", "allocations",
             "stripe_balance_transactions", "deposit_batch_items", "carecredit_funding_lines", "journal_entries",
             "journal_lines")
# ...and the settlement rows that payments of many chunks share, given their final ids when first needed
# (from a block reserved for the whole seed: at most one a day).
SETTLEMENTS = {PaymentMethod.CARD: "stripe_payouts", PaymentMethod.MONEY_ORDER: "deposit_batches",
               PaymentMethod.CARECREDIT: "carecredit_fundings"}


@dataclass
class Stats:
    patients: int = 0
    charges: int = 0
    invoices: int = 0
    payments: int = 0
    journal_entries: int = 0
    open_invoices: int = 0
    card_payments: int = 0
    payouts: int = 0
    deposits: int = 0  # batches made (deposited or still open)
    fundings: int = 0
    daily_closes: int = 0  # none: the bulk data closes no day
    months: int = 0
    first_day: date | None = None
    last_day: date | None = None


def expected_payments(patients: int, months: int) -> int:
    """How many payments `seed` writes for this size (one per visit)."""
    return patients * months * VISITS_PER_MONTH


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the `months` whole months before today's month, oldest first."""
    starts, day = [], today.replace(day=1)
    for _ in range(months):
        day = (day - timedelta(days=1)).replace(day=1)
        starts.append(day)
    return starts[::-1]


@functools.cache
def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@functools.cache
def payout_day(charged: date) -> date:
    """The Tuesday a card charge taken on `charged` is paid out (the first at least two days later)."""
    day = charged + timedelta(days=PAYOUT_AFTER_DAYS)
    return day + timedelta(days=(PAYOUT_WEEKDAY - day.weekday()) % 7)


@functools.cache
def batch_day(received: date) -> date:
    """The Thursday a money order received on `received` goes in a deposit batch (that day or the next)."""
    return received + timedelta(days=(BATCH_WEEKDAY - received.weekday()) % 7)


def deposit_day(batched: date) -> date:
    """The day a batch made on `batched` is deposited: the next business day."""
    return _business_days_after(batched, 1)


@functools.cache
def funding_day(charged: date) -> date:
    """The day CareCredit funds a charge taken on `charged`: two business days later."""
    return _business_days_after(charged, FUNDING_AFTER)


@functools.cache
def _business_days_after(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= day.weekday() < 5
    return day


class _Writer:
    """Inserts tuples through the driver of the session's connection, in its transaction."""

    def __init__(self):
        self.dialect = db.session.get_bind().dialect.name
        self.sequences: dict[str, str] = {}

    def raw(self):
        return db.session.connection().connection.driver_connection

    def reserve(self, table: str, n: int) -> int:
        """The first of `n` unused ids for `table`."""
        if n == 0:
            return 0
        if self.dialect == "postgresql":
            if table not in self.sequences:
                self.sequences[table] = db.session.scalar(
                    sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
            seq = self.sequences[table]
            first = db.session.scalar(sa.text("SELECT nextval(CAST(:s AS regclass))"), {"s": seq})
            db.session.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": seq, "v": first + n - 1})
            return first
        return db.session.scalar(sa.text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}"))

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = COLUMNS[table]
        if self.dialect == "postgresql":
            with self.raw().cursor() as cursor, cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        cursor = self.raw().cursor()
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                           [tuple(_sqlite(v) for v in row) for row in rows])
        cursor.close()


def _sqlite(value):
    """A value as SQLAlchemy stores it in SQLite (dates and naive UTC timestamps as ISO text)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def seed(rng: random.Random, *, today: date, patients: int, months: int,
         progress: Callable[[int], None] | None = None) -> Stats:
    """Write `patients` patients with `months` months of visits and payments (see the module's docstring);
    calls `progress(n)` after every chunk with the payments it wrote. Commits as it goes."""
    if db.session.scalar(sa.select(Patient.id).limit(1)) is not None:
        raise ValueError("Bulk demo data only goes into a clinic without patients; this one has some.")
    clinic = _Clinic.load(rng, today, months)
    if not clinic.starts or not patients:
        return clinic.stats
    writer = _Writer()
    days = (today - clinic.starts[0]).days + 1  # settlement is dated in these days: at most one of each a day
    clinic.next_ids = {table: writer.reserve(table, days) for table in SETTLEMENTS.values()}
    per_chunk = max(1, VISITS_PER_CHUNK // (months * VISITS_PER_MONTH))
    since_commit, first_entry, first_payment = 0, None, None
    for first in range(0, patients, per_chunk):
        count = min(per_chunk, patients - first)
        written_from = _assign_ids_and_write(writer, clinic.rows_for(count))
        if first_entry is None:
            first_entry, first_payment = written_from["journal_entries"], written_from["payments"]
        written = count * months * VISITS_PER_MONTH
        since_commit += written
        if since_commit >= COMMIT_EVERY:
            _save_counters(clinic.counters)
            db.session.commit()
            since_commit = 0
        if progress:
            progress(written)
    totals, tables = clinic.settlements()
    for table, rows in totals.items():
        _update_totals(table, rows)
    _assign_ids_and_write(writer, tables)
    _add_month_totals(first_entry)
    _add_month_figures(first_payment)
    _save_counters(clinic.counters)
    db.session.flush()
    return clinic.stats


@dataclass
class _Clinic:
    """What the rows are drawn from (catalog, accounts, counters, months) and the random source."""

    rng: random.Random
    today: date
    starts: list[date]
    services: dict[str, Service]
    plans: list[CareCreditPlan]
    provider_id: int
    accounts: dict[str, int]  # account code -> id
    prefix: str  # the invoice prefix
    counters: dict[str, int]
    stats: Stats
    tables: dict[str, list[tuple]] = field(default_factory=dict)  # the chunk being built
    # The next final id of each settlement table, and each settlement so far: (method, day it is keyed by)
    # -> [id, payments, gross cents, fee cents].
    next_ids: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SETTLEMENTS.values(), 1))
    settled: dict[tuple[PaymentMethod, date], list[int]] = field(default_factory=dict)
    _stamps: dict[tuple[date, int], datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, rng: random.Random, today: date, months: int) -> "_Clinic":
        """Read the catalog, accounts, invoice prefix and counters. Raises ValueError when the catalog
        lacks what the visits use."""
        services = {s.code: s for s in db.session.scalars(sa.select(Service))}
        missing = {"KET-INF", "CRPS-INF", "BOOSTER", "INF-ADDL", "KET-DRUG"} - services.keys()
        plans = db.session.scalars(sa.select(CareCreditPlan).order_by(CareCreditPlan.id)).all()
        providers = db.session.scalars(sa.select(Provider.id).order_by(Provider.id)).all()
        if missing or not plans or not providers:
            raise ValueError(f"The catalog needs the demo services ({', '.join(sorted(missing)) or 'present'}), "
                             "a CareCredit plan and a provider; run seed_catalog first.")
        accounts = {code: journal.account_id(code) for code in (
            journal.RECEIVABLES, journal.PATIENT_CREDITS, *RECEIVED_INTO.values(), journal.BANK,
            journal.MERCHANT_FEES, journal.FINANCING_FEES,
            *{journal.REVENUE[s.category] for s in services.values()})}
        prefix = db.session.scalar(sa.select(ClinicSettings.invoice_prefix).where(ClinicSettings.id == 1)) or "INV"
        counters = dict(db.session.execute(sa.select(Counter.key, Counter.value)).all())
        starts = month_starts(today, months)
        return cls(rng, today, starts, services, list(plans), providers[-1], accounts, prefix, counters,
                   Stats(months=months, first_day=starts[0] if starts else None))

    def at(self, day: date, hour: int = 17) -> datetime:
        """A timestamp on `day` (naive UTC, as the app stores them)."""
        key = (day, hour)
        if key not in self._stamps:
            self._stamps[key] = datetime.combine(day, time(hour))
        return self._stamps[key]

    def add(self, table: str, row: tuple) -> int:
        """Append a row whose first field is its chunk-local id (1-based, offset when written)."""
        rows = self.tables[table]
        rows.append(row)
        return len(rows)

    def next_id(self, table: str) -> int:
        return len(self.tables[table]) + 1

    def rows_for(self, count: int) -> dict[str, list[tuple]]:
        """The rows for `count` new patients and all their visits, per table, in COLUMNS order."""
        self.tables = {t: [] for t in ORDER}
        rng = self.rng
        for _ in range(count):
            self.counters["patient"] = number = self.counters.get("patient", 0) + 1
            account = f"P{number:06d}"
            first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            joined = self.starts[0] - timedelta(days=rng.randint(1, 60))
            patient = self.add("patients", (
                self.next_id("patients"), account, first_name, last_name, search_key(last_name, first_name),
                date(rng.randint(1950, 2003), rng.randint(1, 12), rng.randint(1, 28)),
                f"{first_name}.{last_name}{number}@example.test".lower(), f"207-555-{rng.randint(0, 9999):04d}",
                f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "", "Portland", "ME", "04101", False,
                self.at(joined, 14)))
            self.stats.patients += 1
            infusion = rng.choices(("KET-INF", "CRPS-INF", "BOOSTER"), weights=(75, 10, 15))[0]
            weight = rng.randint(50, 110)
            person = _Person(patient, account, f"{first_name} {last_name}", f"{rng.randint(0, 9999):04d}",
                             infusion, weight)
            for start in self.starts:
                end = min(_month_end(start), self.today)
                for day in sorted(start + timedelta(days=rng.randint(0, (end - start).days))
                                  for _ in range(VISITS_PER_MONTH)):
                    self.visit(person, day)
        return self.tables

    def visit(self, person: "_Person", day: date) -> None:
        """One visit: its charges, their invoice and journal entries, one payment allocated and posted."""
        rng, patient = self.rng, person.id
        receivables = self.accounts[journal.RECEIVABLES]
        charges = [(self.services[person.infusion], 1)]
        if rng.random() < 0.12:
            charges.append((self.services["INF-ADDL"], 1))
        if rng.random() < 0.5:
            mg_per_kg = 1.0 if person.infusion == "CRPS-INF" else 0.5
            charges.append((self.services["KET-DRUG"], min(24, max(2, round(person.weight * mg_per_kg / 10)))))
        invoice = self.next_id("invoices")
        total = 0
        for service, units in charges:
            amount = service.default_price_cents * units
            total += amount
            charge = self.add("charges", (
                self.next_id("charges"), patient, service.id, self.provider_id, day, units,
                service.default_price_cents, "", 0, amount, "F33.2", "invoiced", invoice, "", self.at(day, 14)))
            self.add("invoice_lines", (self.next_id("invoice_lines"), invoice, charge, day, service.name,
                                       service.cpt_code, units, service.default_price_cents, 0, amount))
            self.post(day, f"Charge {service.code} for {person.account}", "Charge", charge, [
                (receivables, patient, amount), (self.accounts[journal.REVENUE[service.category]], None, -amount)])
            self.stats.charges += 1
        share = rng.random()
        if share < 0.10:  # about half now; the invoice stays open
            amount = max(100, total // 2 // 100 * 100)
        elif share < 0.13:  # overpaid to the next $50: the rest is credit
            amount = (total // 5000 + 1) * 5000
        else:
            amount = total
        applied = min(amount, total)
        year_key = f"invoice:{day.year}"
        self.counters[year_key] = self.counters.get(year_key, 0) + 1
        self.add("invoices", (invoice, patient, format_number(self.prefix, day.year, self.counters[year_key]),
                              "paid" if applied == total else "open", day, self.at(day, 15), None, total, "",
                              self.at(day, 14)))
        self.stats.invoices += 1
        self.stats.open_invoices += applied < total
        self.pay(person, invoice, day, total, amount, applied)

    def pay(self, person: "_Person", invoice: int, day: date, total: int, amount: int, applied: int) -> None:
        """The visit's payment by a random method, its details, its settlement (when it has happened by
        today), its stored month-end figures, its allocation and its journal entry."""
        rng, patient = self.rng, person.id
        received = min(day + timedelta(days=0 if rng.random() < 0.8 else rng.randint(1, 10)), self.today)
        method = rng.choices(METHODS, weights=METHOD_WEIGHTS)[0]
        payment = self.next_id("payments")  # its row follows its details (a CareCredit fee needs the plan)
        if method == PaymentMethod.CARD:  # the Stripe ids are filled from the payment's final id
            self.add("card_details", (payment, None, None, None, invoice, "desk", rng.choice(BRANDS), person.last4,
                                      ""))
            settles_on, fee = payout_day(received), stripe_fee(amount)
            if settles_on <= self.today:
                payout = self.settlement(method, settles_on, amount, fee)
                self.add("stripe_balance_transactions", (
                    self.next_id("stripe_balance_transactions"), None, payout, payment, "charge", "charge", None,
                    None, None, amount, fee, amount - fee, received + timedelta(days=PAYOUT_AFTER_DAYS),
                    "Card payment at the desk"))
            self.stats.card_payments += 1
        elif method == PaymentMethod.MONEY_ORDER:  # the serial too
            self.add("money_order_details", (payment, rng.choice(ISSUERS), None, person.name, True, True, True))
            batched = batch_day(received)
            settles_on, fee = deposit_day(batched), 0
            if batched <= self.today:
                batch = self.settlement(method, batched, amount, 0)
                self.add("deposit_batch_items", (self.next_id("deposit_batch_items"), batch, payment, None))
        else:
            plan = self.plans[0] if total < 100000 else rng.choice(self.plans)
            code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
            self.add("carecredit_details", (payment, code, plan.id, plan.merchant_fee_bps, person.last4, True, True))
            settles_on, fee = funding_day(received), plan_fee(amount, plan.merchant_fee_bps)
            if settles_on <= self.today:
                funding = self.settlement(method, settles_on, amount, fee)
                self.add("carecredit_funding_lines", (
                    self.next_id("carecredit_funding_lines"), funding, code, received, f"{plan.months}M", amount,
                    fee, amount - fee, payment))
        # As of the end of its month (as the reconciliation computes them; no refunds in bulk data).
        settled = settles_on <= min(_month_end(received), self.today)
        self.add("payments", (
            payment, patient, method.value, "succeeded", amount, received, "", self.at(received),
            0, 0, amount if settled else 0, 0 if settled else amount, fee if settled else 0,
            fee if settled and method == PaymentMethod.CARECREDIT else 0, 0 if settled else amount,
            settles_on if settles_on <= self.today else None))
        self.add("allocations", (self.next_id("allocations"), patient, payment, invoice, applied, self.at(received)))
        self.post(received, f"{method.label} payment from {person.account}", "Payment", payment, [
            (self.accounts[RECEIVED_INTO[method]], None, amount),
            (self.accounts[journal.RECEIVABLES], patient, -applied),
            (self.accounts[journal.PATIENT_CREDITS], patient, applied - amount)])
        self.stats.payments += 1
        self.stats.last_day = max(self.stats.last_day or received, received)

    def settlement(self, method: PaymentMethod, day: date, gross: int, fee: int) -> int:
        """The final id of `method`'s payout, deposit batch or funding keyed by `day` (its arrival, batch or
        funding day), counting a payment of `gross` and `fee` in it. A new one is written with this chunk
        (zero totals: see `settlements`)."""
        totals = self.settled.get((method, day))
        if totals is None:
            table = SETTLEMENTS[method]
            settlement_id = self.next_ids[table]
            self.next_ids[table] += 1
            totals = self.settled[(method, day)] = [settlement_id, 0, 0, 0]
            stamp = self.at(day, 9)
            if method == PaymentMethod.CARD:
                row = (settlement_id, f"po_bulk_{day:%Y%m%d}", 0, 0, day, "api", True, stamp)
            elif method == PaymentMethod.MONEY_ORDER:
                deposited = deposit_day(day)
                row = ((settlement_id, f"DEP-BULK-{settlement_id}", DepositStatus.DEPOSITED.value, 0, stamp, None,
                        deposited, f"BULK-{deposited:%Y%m%d}", None) if deposited <= self.today else
                       (settlement_id, f"DEP-BULK-{settlement_id}", DepositStatus.OPEN.value, 0, stamp, None, None,
                        "", None))
            else:
                row = (settlement_id, f"CC{day:%Y%m%d}", day, 0, 0, 0, "csv", stamp, None)
            self.tables[table].append(row)
        totals[1] += 1
        totals[2] += gross
        totals[3] += fee
        return totals[0]

    def settlements(self) -> tuple[dict[str, list[dict]], dict[str, list[tuple]]]:
        """Once every payment is written: each settlement's totals (and deposit number, in date order), and
        the journal entries that post them, in date order, as the services post them."""
        self.tables = {t: [] for t in ORDER}
        a = self.accounts
        updates: dict[str, list[dict]] = {table: [] for table in SETTLEMENTS.values()}
        for (method, day), (settlement_id, count, gross, fee) in sorted(
                self.settled.items(), key=lambda item: (item[0][1], METHODS.index(item[0][0]))):
            if method == PaymentMethod.CARD:
                updates["stripe_payouts"].append({"b_id": settlement_id, "amount_cents": gross - fee, "fee_cents": fee})
                self.post(day, f"Stripe payout po_bulk_{day:%Y%m%d}: {count} transactions", "StripePayout",
                          settlement_id, [(a[journal.MERCHANT_FEES], None, fee), (a[journal.BANK], None, gross - fee),
                                          (a[journal.STRIPE_CLEARING], None, -gross)])
                self.stats.payouts += 1
            elif method == PaymentMethod.MONEY_ORDER:
                key = f"deposit-{day.year}"  # as deposits.create_batch numbers them
                self.counters[key] = self.counters.get(key, 0) + 1
                number = f"DEP-{day.year}-{self.counters[key]:04d}"
                updates["deposit_batches"].append({"b_id": settlement_id, "number": number, "total_cents": gross})
                deposited = deposit_day(day)
                if deposited <= self.today:
                    self.post(deposited, f"Deposit {number} ({count} money orders)", "DepositBatch", settlement_id,
                              [(a[journal.BANK], None, gross), (a[journal.UNDEPOSITED], None, -gross)])
                self.stats.deposits += 1
            else:
                updates["carecredit_fundings"].append({"b_id": settlement_id, "gross_cents": gross, "fee_cents": fee,
                                                       "net_cents": gross - fee})
                self.post(day, f"CareCredit funding CC{day:%Y%m%d}: {count} charges", "CareCreditFunding",
                          settlement_id, [(a[journal.BANK], None, gross - fee), (a[journal.FINANCING_FEES], None, fee),
                                          (a[journal.CARECREDIT_RECEIVABLE], None, -gross)])
                self.stats.fundings += 1
        return updates, self.tables

    def post(self, day: date, description: str, source_type: str, source_id: int,
             lines: list[tuple[int, int | None, int]]) -> None:
        """A journal entry and its non-zero lines (account id, patient id, signed cents), as journal.post
        writes them. Raises ValueError when they do not balance."""
        if sum(cents for _, _, cents in lines):
            raise ValueError(f"Unbalanced entry for {description!r}: {lines}")
        entry = self.add("journal_entries", (self.next_id("journal_entries"), day, self.at(day), description,
                                             source_type, source_id))
        for account_id, patient_id, cents in lines:
            if cents:
                self.add("journal_lines", (self.next_id("journal_lines"), entry, account_id, patient_id, cents))
        self.stats.journal_entries += 1


@dataclass(frozen=True)
class _Person:
    id: int  # chunk-local
    account: str
    name: str
    last4: str
    infusion: str  # the service code of their usual infusion
    weight: int  # kg


def _assign_ids_and_write(writer: _Writer, t: dict[str, list[tuple]]) -> dict[str, int]:
    """Offset the chunk's local ids by blocks reserved in each table, fill the unique Stripe and serial
    fields from the payment ids, and write the tables in foreign-key order. Returns the first id written
    in each table of ID_TABLES."""
    base = {table: writer.reserve(table, len(t[table])) - 1 for table in ID_TABLES}
    p, inv, ch, pay, je = (base["patients"], base["invoices"], base["charges"], base["payments"],
                           base["journal_entries"])
    t["patients"] = [(r[0] + p, *r[1:]) for r in t["patients"]]
    t["invoices"] = [(r[0] + inv, r[1] + p, *r[2:]) for r in t["invoices"]]
    t["charges"] = [(r[0] + ch, r[1] + p, *r[2:12], r[12] + inv, *r[13:]) for r in t["charges"]]
    t["invoice_lines"] = [(r[0] + base["invoice_lines"], r[1] + inv, r[2] + ch, *r[3:]) for r in t["invoice_lines"]]
    t["payments"] = [(r[0] + pay, r[1] + p, *r[2:]) for r in t["payments"]]
    t["card_details"] = [(r[0] + pay, f"bulk-{r[0] + pay}", f"pi_bulk{r[0] + pay:012d}", f"ch_bulk{r[0] + pay:012d}",
                          r[4] + inv, *r[5:]) for r in t["card_details"]]
    t["money_order_details"] = [(r[0] + pay, r[1], f"9{r[0] + pay:010d}", *r[3:]) for r in t["money_order_details"]]
    t["carecredit_details"] = [(r[0] + pay, *r[1:]) for r in t["carecredit_details"]]
    t["allocations"] = [(r[0] + base["allocations"], r[1] + p, r[2] + pay, r[3] + inv, *r[4:])
                        for r in t["allocations"]]
    t["stripe_balance_transactions"] = [
        (r[0] + base["stripe_balance_transactions"], f"txn_bulk{r[3] + pay:012d}", r[2], r[3] + pay, r[4], r[5],
         f"ch_bulk{r[3] + pay:012d}", f"ch_bulk{r[3] + pay:012d}", f"pi_bulk{r[3] + pay:012d}", *r[9:])
        for r in t["stripe_balance_transactions"]]
    t["deposit_batch_items"] = [(r[0] + base["deposit_batch_items"], r[1], r[2] + pay, r[3])
                                for r in t["deposit_batch_items"]]
    t["carecredit_funding_lines"] = [(r[0] + base["carecredit_funding_lines"], *r[1:8], r[8] + pay)
                                     for r in t["carecredit_funding_lines"]]
    # settlements have their final ids already
    sources = {"Charge": ch, "Payment": pay, "StripePayout": 0, "DepositBatch": 0, "CareCreditFunding": 0}
    t["journal_entries"] = [(r[0] + je, r[1], r[2], r[3], r[4], str(r[5] + sources[r[4]]))
                            for r in t["journal_entries"]]
    t["journal_lines"] = [(r[0] + base["journal_lines"], r[1] + je, r[2], None if r[3] is None else r[3] + p, r[4])
                          for r in t["journal_lines"]]
    for table in ORDER:
        writer.write(table, t[table])
    return {table: first + 1 for table, first in base.items()}


def _update_totals(table: str, rows: list[dict]) -> None:
    """Set the settlements' totals (and deposit numbers) by id, once every payment is written."""
    if rows:
        target = db.metadata.tables[table]
        db.session.execute(sa.update(target).where(target.c.id == sa.bindparam("b_id")), rows)


# The journal's lines from `first` on, added to the month totals: the GROUP BY of migration 0008 and of
# journal.post's upsert at commit (a month is its first day on both databases).
_ADD_MONTH_TOTALS = """
    INSERT INTO account_month_totals (account_id, month, source_type, debit_cents, credit_cents)
    SELECT l.account_id, {month}, e.source_type,
           coalesce(sum(CASE WHEN l.amount_cents > 0 THEN l.amount_cents END), 0),
           coalesce(sum(CASE WHEN l.amount_cents < 0 THEN -l.amount_cents END), 0)
    FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
    WHERE e.id >= :first
    GROUP BY l.account_id, {month}, e.source_type
    ON CONFLICT (account_id, month, source_type) DO UPDATE
    SET debit_cents = account_month_totals.debit_cents + excluded.debit_cents,
        credit_cents = account_month_totals.credit_cents + excluded.credit_cents
"""
_MONTH = {"postgresql": "CAST(date_trunc('month', e.entry_date) AS date)",
          "sqlite": "date(e.entry_date, 'start of month')"}


def _add_month_totals(first_entry: int) -> None:
    """Add the entries written in bulk (ids from `first_entry` on) to account_month_totals, in one statement."""
    sql = _ADD_MONTH_TOTALS.format(month=_MONTH[db.session.get_bind().dialect.name])
    db.session.execute(sa.text(sql), {"first": first_entry})


def _add_month_figures(first_payment: int) -> None:
    """Add the payments written in bulk (ids from `first_payment` on) to payment_month_figures, in one
    statement."""
    settlement.add_to_month_figures(db.session, settlement.month_figures_query(Payment.id >= first_payment))


def _save_counters(counters: dict[str, int]) -> None:
    """Move the counters past the numbers used (creating those that did not exist)."""
    table = Counter.__table__
    existing = set(db.session.scalars(sa.select(Counter.key)))
    for key, value in counters.items():
        if key in existing:
            db.session.execute(sa.update(table).where(table.c.key == key).values(value=value))
        else:
            db.session.execute(sa.insert(table).values(key=key, value=value))
