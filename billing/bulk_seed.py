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
- the counters (account numbers, invoice numbers) moved past what was used.

Left out, on purpose: audit events, receipts, deposits, Stripe payouts and CareCredit fundings (the
money stays in Stripe clearing, Undeposited funds and CareCredit receivable), refunds, adjustments.
Ids are taken from each table's sequence in blocks (PostgreSQL) or after the largest id (SQLite).

Deterministic for a given seed, `today`, size and existing data. Commits every `COMMIT_EVERY`
payments (it is a command-line tool, not a request); raises ValueError when the clinic already has
patients (bulk data only goes into an empty clinic) or the catalog lacks a service it uses.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from billing.demo import FIRST_NAMES, LAST_NAMES, STREETS
from billing.extensions import db
from billing.models import (
    CareCreditPlan, ClinicSettings, Counter, Patient, PaymentMethod, Provider, Service,
)
from billing.models.patients import search_key
from billing.services import journal
from billing.services.numbering import format_number
from billing.services.payments import RECEIVED_INTO

VISITS_PER_MONTH = 2
COMMIT_EVERY = 100_000  # payments per transaction
VISITS_PER_CHUNK = 10_000  # rows are built and written this many visits at a time
METHODS = (PaymentMethod.CARD, PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT)
METHOD_WEIGHTS = (50, 30, 20)
ISSUERS = ("usps", "western_union", "moneygram")
BRANDS = ("visa", "mastercard", "amex", "discover")

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
    "payments": ("id", "patient_id", "method", "status", "amount_cents", "received_date", "note", "created_at"),
    "card_details": ("payment_id", "idempotency_key", "payment_intent_id", "charge_id", "invoice_id", "channel",
                     "brand", "last4", "failure_message"),
    "money_order_details": ("payment_id", "issuer", "serial", "purchaser", "id_seen", "signed_in_front_of_staff",
                            "security_features_checked"),
    "carecredit_details": ("payment_id", "authorization_code", "plan_id", "merchant_fee_bps", "account_last4",
                           "id_checked", "receipt_signed"),
    "allocations": ("id", "patient_id", "payment_id", "invoice_id", "amount_cents", "created_at"),
    "journal_entries": ("id", "entry_date", "posted_at", "description", "source_type", "source_id"),
    "journal_lines": ("id", "entry_id", "account_id", "patient_id", "amount_cents"),
}
# Parents before children (foreign keys are enforced on both databases).
ORDER = ("patients", "invoices", "charges", "invoice_lines", "payments", "card_details", "money_order_details",
         "carecredit_details", "allocations", "journal_entries", "journal_lines")
ID_TABLES = ("patients", "invoices", "charges", "invoice_lines", "payments", "allocations", "journal_entries",
             "journal_lines")


@dataclass
class Stats:
    patients: int = 0
    charges: int = 0
    invoices: int = 0
    payments: int = 0
    journal_entries: int = 0
    open_invoices: int = 0
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


def _month_end(start: date) -> date:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


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
    per_chunk = max(1, VISITS_PER_CHUNK // (months * VISITS_PER_MONTH))
    since_commit = 0
    for first in range(0, patients, per_chunk):
        count = min(per_chunk, patients - first)
        _assign_ids_and_write(writer, clinic.rows_for(count))
        written = count * months * VISITS_PER_MONTH
        since_commit += written
        if since_commit >= COMMIT_EVERY:
            _save_counters(clinic.counters)
            db.session.commit()
            since_commit = 0
        if progress:
            progress(written)
    _save_counters(clinic.counters)
    db.session.flush()
    clinic.stats.journal_entries = clinic.stats.charges + clinic.stats.payments
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
            journal.RECEIVABLES, journal.PATIENT_CREDITS, *RECEIVED_INTO.values(),
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
        """The visit's payment by a random method, its details, its allocation and its journal entry."""
        rng, patient = self.rng, person.id
        received = min(day + timedelta(days=0 if rng.random() < 0.8 else rng.randint(1, 10)), self.today)
        method = rng.choices(METHODS, weights=METHOD_WEIGHTS)[0]
        payment = self.add("payments", (self.next_id("payments"), patient, method.value, "succeeded", amount,
                                        received, "", self.at(received)))
        if method == PaymentMethod.CARD:  # the Stripe ids are filled from the payment's final id
            self.add("card_details", (payment, None, None, None, invoice, "desk", rng.choice(BRANDS), person.last4,
                                      ""))
        elif method == PaymentMethod.MONEY_ORDER:  # the serial too
            self.add("money_order_details", (payment, rng.choice(ISSUERS), None, person.name, True, True, True))
        else:
            plan = self.plans[0] if total < 100000 else rng.choice(self.plans)
            code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
            self.add("carecredit_details", (payment, code, plan.id, plan.merchant_fee_bps, person.last4, True, True))
        self.add("allocations", (self.next_id("allocations"), patient, payment, invoice, applied, self.at(received)))
        self.post(received, f"{method.label} payment from {person.account}", "Payment", payment, [
            (self.accounts[RECEIVED_INTO[method]], None, amount),
            (self.accounts[journal.RECEIVABLES], patient, -applied),
            (self.accounts[journal.PATIENT_CREDITS], patient, applied - amount)])
        self.stats.payments += 1
        self.stats.last_day = max(self.stats.last_day or received, received)

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


@dataclass(frozen=True)
class _Person:
    id: int  # chunk-local
    account: str
    name: str
    last4: str
    infusion: str  # the service code of their usual infusion
    weight: int  # kg


def _assign_ids_and_write(writer: _Writer, t: dict[str, list[tuple]]) -> None:
    """Offset the chunk's local ids by blocks reserved in each table, fill the unique Stripe and serial
    fields from the payment ids, and write the tables in foreign-key order."""
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
    sources = {"Charge": ch, "Payment": pay}
    t["journal_entries"] = [(r[0] + je, r[1], r[2], r[3], r[4], str(r[5] + sources[r[4]]))
                            for r in t["journal_entries"]]
    t["journal_lines"] = [(r[0] + base["journal_lines"], r[1] + je, r[2], None if r[3] is None else r[3] + p, r[4])
                          for r in t["journal_lines"]]
    for table in ORDER:
        writer.write(table, t[table])


def _save_counters(counters: dict[str, int]) -> None:
    """Move the counters past the numbers used (creating those that did not exist)."""
    table = Counter.__table__
    existing = set(db.session.scalars(sa.select(Counter.key)))
    for key, value in counters.items():
        if key in existing:
            db.session.execute(sa.update(table).where(table.c.key == key).values(value=value))
        else:
            db.session.execute(sa.insert(table).values(key=key, value=value))
