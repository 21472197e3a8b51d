"""Documents benchmark: a receipt and a 3-page statement through the app, against WeasyPrint alone.

On a fresh database (a SQLite file, or a PostgreSQL database created for the run and dropped after)
built by the Alembic migrations: a small fee schedule, the clinic's letterhead, and one patient with
a visit a day (an infusion, an additional hour, the invoice, a money order with its receipt). The
statement's period is chosen so that it renders to exactly 3 pages (checked with pypdf); the
receipt is the one of the patient's last money order.

Each document is timed two ways, alternately, R times after 2 warm-ups:

- app: `receipt_pdf(receipt)` / `statement_pdf(patient, start, end)`: the queries, the Jinja
  template with the letterhead, and WeasyPrint, as a view calls them;
- bare: `weasyprint.HTML(string=html, ...).write_pdf(...)` on the very HTML string the app rendered,
  with the same base URL, URL fetcher and PDF options, and no app or database work.

The figure is the ratio of the medians, app / bare (target: 1.2 or less).

    .venv/bin/python -m bench.documents --db sqlite --repeat 20 --json bench/results/x.json

See bench/README.md for what is measured and the results.
"""

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from time import perf_counter_ns, process_time_ns

import flask
import flask_migrate
import sqlalchemy as sa
import weasyprint
from pypdf import PdfReader

from bench.checkout import (
    DEFAULT_PG_ADMIN_URL,
    StatementCounter,
    bench_config,
    code_version,
    fresh_database,
    machine,
    machine_load,
    seed_catalog,
    stats_ms,
    to_json,
    wait_until_idle,
)
from billing import create_app, documents
from billing.documents.receipts import receipt_data, receipt_pdf
from billing.documents.statements import statement_pdf
from billing.extensions import db
from billing.models import MoneyOrderIssuer, Patient, Receipt
from billing.money import Money
from billing.reports import statements
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.services.settings import get_settings
from billing.timeutil import clinic_today

TARGET_RATIO = 1.20  # app median / bare median, per document
WARMUPS = 2
VISITS = 60  # more than 3 pages' worth of statement lines (3 per visit)
PAYMENT = Money.parse("500.00")  # per visit, against $600.00 of charges: the balance grows $100 a visit
FIRST_SERIAL = 81_000_000
DOCUMENTS = ("receipt", "statement")


# --- the data ---------------------------------------------------------------------------------


def seed(catalog: dict, today: date) -> tuple[int, list[date]]:
    """The letterhead and one patient with VISITS daily visits ending today; each visit is its own
    transaction, as at the desk. Returns the patient's id and the visit days."""
    clinic = get_settings()
    clinic.name, clinic.address_line1 = "Lakeside Infusion Clinic", "200 Harbor Street, Suite 4"
    clinic.city, clinic.state, clinic.postal_code = "Portland", "ME", "04101"
    clinic.phone, clinic.email = "(207) 555-0142", "billing@lakeside.test"
    clinic.tin, clinic.npi = "12-3456789", "1234567893"
    patient = patient_service.create_patient(
        {"first_name": "Sam", "last_name": "Rivera", "date_of_birth": date(1980, 5, 17), "email": "sam@example.test",
         "phone": "555-0100", "address_line1": "12 Elm Street", "city": "Portland", "state": "ME",
         "postal_code": "04103"}, today=today)
    db.session.commit()
    days = [today - timedelta(days=VISITS - 1 - i) for i in range(VISITS)]
    for i, day in enumerate(days):
        for service in ("infusion", "addl"):
            charge_service.post_charge(patient, charge_service.ChargeInput(
                service=catalog[service], date_of_service=day, provider=catalog["provider"], icd10_codes=["F33.2"]),
                today=today)
        invoice_service.issue_invoice(patient, today=day)
        payment_service.record_money_order(
            patient, PAYMENT,
            payment_service.MoneyOrderInput(
                issuer=MoneyOrderIssuer.WESTERN_UNION if i % 3 else MoneyOrderIssuer.USPS,
                serial=str(FIRST_SERIAL + i), purchaser="Sam Rivera", id_seen=True,
                signed_in_front_of_staff=True, security_features_checked=True),
            received_date=day, today=today)
        db.session.commit()
    return patient.id, days


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def three_page_period(patient_id: int, days: list[date]) -> tuple[date, int, tuple[int, int]]:
    """The statement's start day: the number of visits in the period is the middle of the range that
    renders to exactly 3 pages (found by bisection; pages only grow with visits). Returns the start,
    the number of visits and that range."""
    patient = db.session.get(Patient, patient_id)
    pages: dict[int, int] = {}

    def pages_for(visits: int) -> int:
        if visits not in pages:
            pages[visits] = page_count(statement_pdf(patient, days[-visits], days[-1]).pdf)
        return pages[visits]

    def first_with(at_least: int) -> int:
        lo, hi = 1, len(days)
        if pages_for(hi) < at_least:
            raise SystemExit(f"{len(days)} visits give only {pages_for(hi)} pages; raise VISITS.")
        while lo < hi:
            mid = (lo + hi) // 2
            if pages_for(mid) >= at_least:
                hi = mid
            else:
                lo = mid + 1
        return lo

    lo, hi = first_with(3), first_with(4) - 1
    visits = (lo + hi) // 2
    if pages_for(visits) != 3:
        raise SystemExit(f"The statement of {visits} visits has {pages_for(visits)} pages, not 3.")
    db.session.rollback()
    return days[-visits], visits, (lo, hi)


# --- the HTML the app renders -----------------------------------------------------------------


class Captured:
    """What `billing.documents.render_pdf` handed WeasyPrint: the HTML string, the HTML() keyword
    arguments other than the string, and the write_pdf() options."""

    def __init__(self):
        self.html: str | None = None
        self.html_kwargs: dict = {}
        self.pdf_kwargs: dict = {}


@contextmanager
def capturing() -> Captured:
    """Within the block, the app's WeasyPrint HTML class records what it is given (and still renders)."""
    captured = Captured()

    class RecordingHTML(weasyprint.HTML):
        def __init__(self, *args, **kwargs):
            captured.html, captured.html_kwargs = kwargs["string"], {k: v for k, v in kwargs.items() if k != "string"}
            super().__init__(*args, **kwargs)

        def write_pdf(self, *args, **kwargs):
            captured.pdf_kwargs = kwargs
            return super().write_pdf(*args, **kwargs)

    original, documents.HTML = documents.HTML, RecordingHTML
    try:
        yield captured
    finally:
        documents.HTML = original


def bare_renderer(captured: Captured) -> Callable[[], bytes]:
    """WeasyPrint alone on the captured HTML: the same base URL and options, a new fetcher of the
    same class each time (as render_pdf makes one per document)."""
    html, base_url, pdf_kwargs = captured.html, captured.html_kwargs["base_url"], captured.pdf_kwargs
    fetcher_class = type(captured.html_kwargs["url_fetcher"])

    def render() -> bytes:
        return weasyprint.HTML(string=html, base_url=base_url,
                               url_fetcher=fetcher_class(allowed_protocols={"data"})).write_pdf(**pdf_kwargs)

    return render


# --- the timed loop ---------------------------------------------------------------------------


def app_renderer(document: str, receipt_id: int, patient_id: int, start: date, end: date):
    """(prepare, render): prepare (untimed) ends the transaction, which expires every loaded object,
    and loads the receipt or patient by id as the view does; render is the document function."""
    box = {}

    def prepare() -> None:
        db.session.commit()
        box["row"] = (db.session.get(Receipt, receipt_id) if document == "receipt"
                      else db.session.get(Patient, patient_id))

    def render() -> bytes:
        if document == "receipt":
            return receipt_pdf(box["row"]).pdf
        return statement_pdf(box["row"], start, end).pdf

    return prepare, render


def timed(fn: Callable[[], bytes]) -> tuple[int, int, bytes]:
    gc.collect()
    cpu, t0 = process_time_ns(), perf_counter_ns()
    pdf = fn()
    return perf_counter_ns() - t0, process_time_ns() - cpu, pdf


def measure(document: str, prepare: Callable[[], None], app: Callable[[], bytes], bare: Callable[[], bytes],
            repeat: int, counter: StatementCounter, profile: cProfile.Profile | None) -> dict:
    """WARMUPS untimed rounds, then `repeat` rounds of app then bare (alternating, so a busy moment
    on the machine hits both)."""
    for _ in range(WARMUPS):
        prepare()
        app()
        bare()
    result = {"app_ns": [], "bare_ns": [], "app_cpu_ns": [], "bare_cpu_ns": [], "statements": [],
              "load_before": machine_load()}
    for _ in range(repeat):
        prepare()
        before = counter.count
        if profile:
            profile.enable()
        ns, cpu, app_pdf = timed(app)
        if profile:
            profile.disable()
        result["statements"].append(counter.count - before)
        result["app_ns"].append(ns)
        result["app_cpu_ns"].append(cpu)
        ns, cpu, bare_pdf = timed(bare)
        result["bare_ns"].append(ns)
        result["bare_cpu_ns"].append(cpu)
        if app_pdf != bare_pdf:
            raise SystemExit(f"{document}: the bare rendering differs from the app's; the benchmark is unfair.")
    result["load_after"] = machine_load()
    result["pages"] = page_count(app_pdf)
    result["pdf_bytes"] = len(app_pdf)
    return result


def parts(document: str, prepare: Callable[[], None], receipt_id: int, patient_id: int, start: date, end: date,
          repeat: int) -> dict:
    """Where the app's extra time goes, timed apart (medians): building the data (queries), and
    render_template with the letterhead (its settings query included)."""
    if document == "receipt":
        def data():
            return receipt_data(db.session.get(Receipt, receipt_id))
    else:
        def data():
            return statements.build_statement(db.session.get(Patient, patient_id), start, end)
    built = data()
    if document == "receipt":
        receipt = db.session.get(Receipt, receipt_id)
        template, kwargs = "receipt.html", {"document_number": receipt.number, "document_title": built["title"],
                                           "document_dated": documents.w3c_date(receipt.issued_at),
                                           "receipt": built}
    else:
        patient = db.session.get(Patient, patient_id)
        template = "statement.html"
        kwargs = {"document_number": f"ST-{patient.account_number}-{start:%Y%m%d}-{end:%Y%m%d}",
                  "document_title": "Statement", "document_dated": None, "statement": built,
                  "statement_date": clinic_today()}

    def render_template():
        return flask.render_template(f"pdf/{template}", clinic=documents.letterhead(), **kwargs)

    out = {}
    for name, fn in (("data", data), ("template", render_template)):
        for _ in range(WARMUPS):
            prepare()
            fn()
        samples = []
        for _ in range(repeat):
            prepare()
            gc.collect()
            t0 = perf_counter_ns()
            fn()
            samples.append(perf_counter_ns() - t0)
        out[name] = round(statistics.median(samples) / 1e6, 3)
    return out


def benchmark(kind: str, repeat: int, pg_admin_url: str, profile_path: Path | None, wait_idle: float) -> dict:
    with fresh_database(kind, pg_admin_url) as url:
        app = create_app(bench_config(url))
        with app.app_context():
            try:
                flask_migrate.upgrade()
                catalog = seed_catalog()
                today = clinic_today()
                patient_id, days = seed(catalog, today)
                version = db.session.scalar(sa.text(
                    "SELECT sqlite_version()" if kind == "sqlite" else "SHOW server_version"))
                start, visits, three_pages = three_page_period(patient_id, days)
                end = days[-1]
                receipt_id = db.session.scalar(  # the receipt of the last visit's money order
                    sa.select(sa.func.max(Receipt.id)).where(Receipt.payment_id.is_not(None)))
                db.session.commit()
                counter = StatementCounter(db.engine)
                profile = cProfile.Profile() if profile_path else None
                results = {}
                for document in DOCUMENTS:
                    prepare, app_render = app_renderer(document, receipt_id, patient_id, start, end)
                    prepare()
                    with capturing() as captured:
                        first = app_render()
                    bare = bare_renderer(captured)
                    if wait_idle:
                        wait_until_idle(wait_idle)
                    run = measure(document, prepare, app_render, bare, repeat, counter, profile)
                    run["html_chars"] = len(captured.html)
                    run["parts_median_ms"] = parts(document, prepare, receipt_id, patient_id, start, end, repeat)
                    if first != bare():
                        raise SystemExit(f"{document}: rendering is not deterministic.")
                    results[document] = run
                if profile:
                    profile.dump_stats(profile_path)
                receipt_number = db.session.get(Receipt, receipt_id).number
                db.session.commit()
            finally:
                db.session.remove()
                db.engine.dispose()
    return {"database_version": version, "documents": results,
            "setup": {"visits_seeded": len(days), "statement_start": start.isoformat(), "statement_end": end.isoformat(),
                      "statement_visits": visits, "statement_lines": 3 * visits,
                      "visits_giving_3_pages": list(three_pages), "receipt": receipt_number}}


# --- reporting --------------------------------------------------------------------------------


def summarise(document: str, run: dict) -> dict:
    app, bare = stats_ms(run["app_ns"]), stats_ms(run["bare_ns"])
    ratio = app["median"] / bare["median"]
    return {
        "document": document, "pages": run["pages"], "pdf_bytes": run["pdf_bytes"], "html_chars": run["html_chars"],
        "app_ms": app, "bare_ms": bare,
        "app_cpu_ms_median": round(statistics.median(run["app_cpu_ns"]) / 1e6, 3),
        "bare_cpu_ms_median": round(statistics.median(run["bare_cpu_ns"]) / 1e6, 3),
        "extra_ms_median": round(app["median"] - bare["median"], 3),
        "ratio_median": round(ratio, 3),
        "ratio_min": round(app["min"] / bare["min"], 3),
        "sql_statements": statistics.median(run["statements"]),
        "parts_median_ms": run["parts_median_ms"],
        "target_ratio": TARGET_RATIO, "meets_target": ratio <= TARGET_RATIO,
        "load_before": run["load_before"], "load_after": run["load_after"],
        "raw_app_ns": run["app_ns"], "raw_bare_ns": run["bare_ns"],
    }


def print_summary(kind: str, setup: dict, summary: list[dict], repeat: int) -> None:
    print(f"\n{kind}: statement {setup['statement_start']} to {setup['statement_end']}, "
          f"{setup['statement_visits']} visits ({setup['statement_lines']} lines; "
          f"{setup['visits_giving_3_pages'][0]}-{setup['visits_giving_3_pages'][1]} visits give 3 pages); "
          f"receipt {setup['receipt']}. Median of {repeat} after {WARMUPS} warm-ups:")
    print(f"  {'document':<10} {'pages':>5} {'app ms':>8} {'bare ms':>8} {'extra':>7} {'ratio':>6} {'SQL':>4}"
          f" {'data ms':>8} {'tmpl ms':>8}")
    for s in summary:
        verdict = "PASS" if s["meets_target"] else "FAIL"
        print(f"  {s['document']:<10} {s['pages']:>5} {s['app_ms']['median']:>8.2f} {s['bare_ms']['median']:>8.2f} "
              f"{s['extra_ms_median']:>7.2f} {s['ratio_median']:>6.3f} {s['sql_statements']:>4g}"
              f" {s['parts_median_ms']['data']:>8.2f} {s['parts_median_ms']['template']:>8.2f}"
              f"   target <= {TARGET_RATIO:.2f}: {verdict}")
        busy = s["load_before"].get("cpu_pressure_avg10", 0) > 10
        if busy:
            print(f"  warning: the machine was busy when {s['document']} started ({s['load_before']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=20, metavar="R",
                        help=f"timed renderings of each document, each way, after {WARMUPS} warm-ups (default 20)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each document, wait up to SECONDS for CPU pressure to fall below 5 %% (default 0)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results (with raw timings) here")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL),
                        help="PostgreSQL database to connect to for CREATE/DROP DATABASE (default %(default)s)")
    parser.add_argument("--profile", type=Path, metavar="PATH",
                        help="profile the timed app renderings with cProfile, write the stats to PATH")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    started, code = datetime.now(UTC), code_version()
    print(f"code {code['sha256']} (newest file {code['newest_file']}, {code['newest_mtime']}); "
          f"WeasyPrint {weasyprint.__version__}")
    result = benchmark(args.db, args.repeat, args.pg_admin_url, args.profile, args.wait_idle)
    summary = [summarise(d, result["documents"][d]) for d in DOCUMENTS]
    print_summary(args.db, result["setup"], summary, args.repeat)
    if args.profile:
        print(f"\ncProfile of the app renderings (top 25 by cumulative time) -> {args.profile}")
        pstats.Stats(str(args.profile), stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    if code_version()["sha256"] != code["sha256"]:
        print("\nwarning: the code changed while the benchmark ran")
    if args.json:
        report = {
            "benchmark": "documents", "started_at": started.isoformat(timespec="seconds"), "db": args.db,
            "code": code, "database_version": result["database_version"], "weasyprint": weasyprint.__version__,
            "profiled": bool(args.profile), "repeat": args.repeat, "warmups": WARMUPS,
            "wait_idle_s": args.wait_idle, "machine": machine(), "setup": result["setup"],
            "target_ratio": TARGET_RATIO,
            "summary": [{k: s[k] for k in ("document", "pages", "app_ms", "bare_ms", "extra_ms_median",
                                           "ratio_median", "sql_statements", "parts_median_ms", "meets_target")}
                        for s in summary],
            "runs": summary,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(report))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
