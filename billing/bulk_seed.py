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


@dataclass
class _Rows:
    """One chunk's rows, per table, as tuples in COLUMNS order."""
    tables: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in ORDER})


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
    services = {s.code: s for s in db.session.scalars(sa.select(Service))}
    missing = {"KET-INF", "CRPS-INF", "BOOSTER", "INF-ADDL", "KET-DRUG"} - services.keys()
    plans = db.session.scalars(sa.select(CareCreditPlan).order_by(CareCreditPlan.id)).all()
    providers = db.session.scalars(sa.select(Provider).order_by(Provider.id)).all()
    if missing or not plans or not providers:
        raise ValueError(f"The catalog needs the demo services ({', '.join(sorted(missing)) or 'present'}), "
                         "a CareCredit plan and a provider; run seed_catalog first.")
    writer = _Writer()
    prefix = db.session.scalar(sa.select(ClinicSettings.invoice_prefix).where(ClinicSettings.id == 1)) or "INV"
    counters = dict(db.session.execute(sa.select(Counter.key, Counter.value)).all())
    accounts = {code: journal.account_id(code) for code in (
        journal.RECEIVABLES, journal.PATIENT_CREDITS, *RECEIVED_INTO.values(),
        *{journal.REVENUE[s.category] for s in services.values()})}
    starts = month_starts(today, months)
    stats = Stats(months=months, first_day=starts[0] if starts else None)
    if not starts or not patients:
        return stats
    per_chunk = max(1, VISITS_PER_CHUNK // (months * VISITS_PER_MONTH))
    since_commit = 0
    for first in range(0, patients, per_chunk):
        count = min(per_chunk, patients - first)
        rows = _chunk(rng, count, starts, today, services, plans, providers, accounts, prefix, counters, stats)
        _assign_ids_and_write(writer, rows)
        written = count * months * VISITS_PER_MONTH
        since_commit += written
        if since_commit >= COMMIT_EVERY:
            _save_counters(counters)
            db.session.commit()
            since_commit = 0
        if progress:
            progress(written)
    _save_counters(counters)
    db.session.flush()
    stats.journal_entries = stats.charges + stats.payments
    return stats


def _chunk(rng, count, starts, today, services, plans, providers, accounts, prefix, counters, stats) -> _Rows:
    """The rows for `count` new patients, with ids local to the chunk (1-based, offset when written)."""
    out = _Rows()
    t = out.tables
    noon = {}

    def at(day: date, hour: int = 17) -> datetime:  # naive UTC, as the app stores timestamps
        key = (day, hour)
        if key not in noon:
            noon[key] = datetime.combine(day, time(hour))
        return noon[key]

    crna = providers[-1].id
    receivables, credits = accounts[journal.RECEIVABLES], accounts[journal.PATIENT_CREDITS]
    for _ in range(count):
        patient = len(t["patients"]) + 1
        counters["patient"] = number = counters.get("patient", 0) + 1
        account = f"P{number:06d}"
        first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        joined = starts[0] - timedelta(days=rng.randint(1, 60))
        t["patients"].append((
            patient, account, first_name, last_name, search_key(last_name, first_name),
            date(rng.randint(1950, 2003), rng.randint(1, 12), rng.randint(1, 28)),
            f"{first_name}.{last_name}{number}@example.test".lower(), f"207-555-{rng.randint(0, 9999):04d}",
            f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "", "Portland", "ME", "04101", False, at(joined, 14)))
        stats.patients += 1
        kind = rng.choices(("KET-INF", "CRPS-INF", "BOOSTER"), weights=(75, 10, 15))[0]
        weight = rng.randint(50, 110)
        last4 = f"{rng.randint(0, 9999):04d}"
        for start in starts:
            end = min(_month_end(start), today)
            days = sorted(start + timedelta(days=rng.randint(0, (end - start).days)) for _ in range(VISITS_PER_MONTH))
            for day in days:
                _visit(rng, t, stats, patient, account, f"{first_name} {last_name}", last4, day, today, kind,
                       weight, services, plans, crna, accounts, receivables, credits, prefix, counters, at)
    return out


def _visit(rng, t, stats, patient, account, name, last4, day, today, kind, weight, services, plans, crna,
           accounts, receivables, credits, prefix, counters, at) -> None:
    """One visit: its charges, their invoice and journal entries, one payment allocated and posted."""
    charges = [(services[kind], 1)]
    if rng.random() < 0.12:
        charges.append((services["INF-ADDL"], 1))
    if rng.random() < 0.5:
        charges.append((services["KET-DRUG"], min(24, max(2, round(weight * (1.0 if kind == "CRPS-INF" else 0.5)
                                                                      / 10)))))
    invoice = len(t["invoices"]) + 1
    total = 0
    for service, units in charges:
        charge = len(t["charges"]) + 1
        amount = service.default_price_cents * units
        total += amount
        t["charges"].append((charge, patient, service.id, crna, day, units, service.default_price_cents, "", 0,
                             amount, "F33.2", "invoiced", invoice, "", at(day, 14)))
        t["invoice_lines"].append((len(t["invoice_lines"]) + 1, invoice, charge, day, service.name,
                                   service.cpt_code, units, service.default_price_cents, 0, amount))
        entry = _entry(t, day, f"Charge {service.code} for {account}", "Charge", charge, at)
        _line(t, entry, receivables, patient, amount)
        _line(t, entry, accounts[journal.REVENUE[service.category]], None, -amount)
        stats.charges += 1
    year_key = f"invoice:{day.year}"
    counters[year_key] = counters.get(year_key, 0) + 1
    share = rng.random()
    if share < 0.10:  # about half now; the invoice stays open
        amount = max(100, total // 2 // 100 * 100)
    elif share < 0.13:  # overpaid to the next $50: the rest is credit
        amount = (total // 5000 + 1) * 5000
    else:
        amount = total
    applied = min(amount, total)
    paid = applied == total
    t["invoices"].append((invoice, patient, format_number(prefix, day.year, counters[year_key]),
                          "paid" if paid else "open", day, at(day, 15), None, total, "", at(day, 14)))
    stats.invoices += 1
    stats.open_invoices += not paid
    received = min(day + timedelta(days=0 if rng.random() < 0.8 else rng.randint(1, 10)), today)
    method = rng.choices(METHODS, weights=METHOD_WEIGHTS)[0]
    payment = len(t["payments"]) + 1
    t["payments"].append((payment, patient, method.value, "succeeded", amount, received, "", at(received)))
    if method == PaymentMethod.CARD:
        t["card_details"].append((payment, None, None, None, invoice, "desk", rng.choice(BRANDS), last4, ""))
    elif method == PaymentMethod.MONEY_ORDER:
        t["money_order_details"].append((payment, rng.choice(ISSUERS), None, name, True, True, True))
    else:
        plan = plans[0] if total < 100000 else rng.choice(plans)
        code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
        t["carecredit_details"].append((payment, code, plan.id, plan.merchant_fee_bps, last4, True, True))
    t["allocations"].append((len(t["allocations"]) + 1, patient, payment, invoice, applied, at(received)))
    entry = _entry(t, received, f"{method.label} payment from {account}", "Payment", payment, at)
    _line(t, entry, accounts[RECEIVED_INTO[method]], None, amount)
    _line(t, entry, receivables, patient, -applied)
    if amount > applied:
        _line(t, entry, credits, patient, applied - amount)
    stats.payments += 1
    stats.last_day = max(stats.last_day or received, received)


def _entry(t, day, description, source_type, source_id, at) -> int:
    entry = len(t["journal_entries"]) + 1
    t["journal_entries"].append((entry, day, at(day), description, source_type, source_id))
    return entry


def _line(t, entry, account_id, patient_id, cents) -> None:
    t["journal_lines"].append((len(t["journal_lines"]) + 1, entry, account_id, patient_id, cents))


def _assign_ids_and_write(writer: _Writer, rows: _Rows) -> None:
    """Offset the chunk's local ids by blocks reserved in each table, fill the unique Stripe and serial
    fields from the payment ids, and write the tables in foreign-key order."""
    t = rows.tables
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
