"""Reconciliation benchmark: the app's monthly figures over 1,000,000 payments against the plain SQL GROUP BY.

A fresh database (a SQLite file, or a PostgreSQL database created for the run and dropped after) is
migrated and filled by the command the issue names, `flask billing seed-demo --patients N --months M`
(the bulk generator, billing/bulk_seed.py), run as a subprocess so its time and peak memory are its
own. Then, in this process, for one month, alternately: the app's report functions and the plain

    SELECT method, count(*), sum(amount_cents) FROM payments
    WHERE received_date BETWEEN :start AND :end GROUP BY method

The figure is the ratio of the medians, app / plain; target 1.5 or less. See bench/README.md.

    .venv/bin/python -m bench.reconciliation --db sqlite --json bench/results/x.json
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter, perf_counter_ns

import flask_migrate
import sqlalchemy as sa

from bench.checkout import (
    DEFAULT_PG_ADMIN_URL, bench_config, code_version, fresh_database, machine, machine_load, to_json,
    wait_until_idle,
)
from billing import bulk_seed, create_app
from billing.extensions import db
from billing.models import Payment, PaymentMethod
from billing.reports import reconciliation, revenue
from billing.services import settlement
from billing.timeutil import clinic_today

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
PLAIN = sa.text("SELECT method, count(*), sum(amount_cents) FROM payments "
                "WHERE received_date BETWEEN :start AND :end GROUP BY method")


# --- seeding through the command line ---------------------------------------------------------------


def migrate(url: str) -> None:
    app = create_app(bench_config(url))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def run_flask(url: str, *args: str, show_stderr: bool = False) -> tuple[str, str, float, resource.struct_rusage]:
    """`flask --app billing ARGS` on the database `url` in a subprocess: its standard output, standard
    error (left on this terminal when `show_stderr`, e.g. a progress bar), wall time and resource usage
    (ru_maxrss of that child alone, from os.wait4). Exits on failure."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-only-not-a-secret"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "flask", "--app", "billing", *args], cwd=ROOT, env=env,
                                 stdout=out, stderr=None if show_stderr else err)
        _, status, usage = os.wait4(child.pid, 0)  # reaps the child: its rusage alone
        wall = perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        output, errors = out.read(), err.read()
    if child.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed ({child.returncode}):\n{output}{errors}")
    return output, errors, wall, usage


def seed_with_cli(url: str, patients: int, months: int, seed: int) -> dict:
    """`flask billing seed-demo --patients N --months M --seed S --bulk` on `url`, in a subprocess; its wall
    time, CPU and peak resident memory."""
    args = ("billing", "seed-demo", "--patients", str(patients), "--months", str(months), "--seed", str(seed),
            "--bulk")
    output, _, wall, usage = run_flask(url, *args, show_stderr=True)
    summary = next(line for line in output.splitlines() if line.startswith("Seeded ") and "payments" in line)
    return {"command": "flask --app billing " + " ".join(args), "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "output": summary}


def write_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(report))
    print(f"wrote {path}")


def table_counts() -> dict[str, int]:
    return {t: db.session.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in (
        "patients", "charges", "invoices", "payments", "card_details", "money_order_details", "carecredit_details",
        "allocations", "stripe_payouts", "stripe_balance_transactions", "deposit_batches", "deposit_batch_items",
        "carecredit_fundings", "carecredit_funding_lines", "journal_entries", "journal_lines",
        "account_month_totals")}


def database_size(kind: str, url: str) -> float:
    if kind == "sqlite":
        path = Path(sa.make_url(url).database)
        return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1)
    return round(db.session.scalar(sa.text("SELECT pg_database_size(current_database())")) / 2**20, 1)


# --- the timed comparison -----------------------------------------------------------------------------


def plain(start: date, end: date) -> dict:
    rows = db.session.execute(PLAIN, {"start": start, "end": end}).all()
    return {PaymentMethod(method): (int(n), int(cents)) for method, n, cents in rows}


def contenders(start: date) -> dict:
    """The app's functions timed against the plain query; each returns its per-method (count, cents), or
    None when it answers something else (then only its time is compared)."""
    end = reconciliation.month_bounds(start)[1]

    def method_totals():
        return {m: (f.count, f.amount.cents) for m, f in zip(PaymentMethod, revenue.method_totals(start, end))}

    def method_figures():
        return {f.method: (f.count, f.received.cents) for f in reconciliation.method_figures(start)}

    def month_figures_group_by():  # what payment_month_figures keeps, computed from the payments instead
        rows = db.session.execute(settlement.month_figures_query(Payment.received_date.between(start, end)))
        return {PaymentMethod(r.method): (int(r.payment_count), int(r.received_cents)) for r in rows}

    def roll_forward():
        reconciliation.ar_roll_forward(start)

    def full_report():
        report = reconciliation.reconciliation(start)
        return {f.method: (f.count, f.received.cents) for f in report.methods}

    return {"revenue.method_totals": method_totals, "reconciliation.method_figures": method_figures,
            "settlement.month_figures_query": month_figures_group_by,
            "reconciliation.ar_roll_forward": roll_forward, "reconciliation.reconciliation": full_report}


def time_once(call) -> tuple[int, object]:
    db.session.rollback()  # a new transaction (and snapshot) each time, as a request would have
    t0 = perf_counter_ns()
    result = call()
    elapsed = perf_counter_ns() - t0
    db.session.rollback()
    return elapsed, result


def compare(start: date, repeat: int) -> dict:
    """Warm each query up once, then run app and plain alternately `repeat` times per app function.
    A function that raises is recorded with its error and not timed."""
    end = reconciliation.month_bounds(start)[1]
    expected = plain(start, end)
    results = {}
    for name, app_call in contenders(start).items():
        try:
            warm_ns, got = time_once(app_call)
        except Exception as err:  # noqa: BLE001 -- recorded, and the other functions still measured
            db.session.rollback()
            results[name] = {"error": f"{type(err).__name__}: {err}", "meets_target": False}
            print(f"  {name:<32} raised {type(err).__name__}: {err}")
            continue
        if got is not None and {m: v for m, v in got.items() if v[0]} != expected:
            raise SystemExit(f"{name} disagrees with the plain GROUP BY: {got} != {expected}")
        time_once(lambda: plain(start, end))
        app_ns, plain_ns = [], []
        for _ in range(repeat):
            app_ns.append(time_once(app_call)[0])
            plain_ns.append(time_once(lambda: plain(start, end))[0])
        app_median, plain_median = statistics.median(app_ns), statistics.median(plain_ns)
        ratio = app_median / plain_median
        results[name] = {
            "app_ms": {"median": round(app_median / 1e6, 2), "min": round(min(app_ns) / 1e6, 2),
                       "max": round(max(app_ns) / 1e6, 2), "warm_up": round(warm_ns / 1e6, 2)},
            "plain_ms": {"median": round(plain_median / 1e6, 2), "min": round(min(plain_ns) / 1e6, 2),
                         "max": round(max(plain_ns) / 1e6, 2)},
            "ratio_of_medians": round(ratio, 3), "ratio_of_minimums": round(min(app_ns) / min(plain_ns), 3),
            "target": TARGET_RATIO, "meets_target": ratio <= TARGET_RATIO,
            "raw_app_ns": app_ns, "raw_plain_ns": plain_ns,
        }
        print(f"  {name:<32} app {app_median / 1e6:9.2f} ms   plain {plain_median / 1e6:8.2f} ms   "
              f"ratio {ratio:6.2f}   target <= {TARGET_RATIO}: {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}")
    return {"month": start.isoformat(), "payments_in_month": sum(n for n, _ in expected.values()),
            "plain_result": {m.value: {"count": n, "cents": c} for m, (n, c) in expected.items()},
            "functions": results}


def benchmark(args) -> dict:
    with fresh_database(args.db, args.pg_admin_url) as url:
        migrate(url)
        print(f"seeding {bulk_seed.expected_payments(args.patients, args.months):,} payments on {args.db} ...")
        seeding = seed_with_cli(url, args.patients, args.months, args.seed)
        print(f"  {seeding['output']} in {seeding['wall_s']} s (peak {seeding['peak_rss_mb']} MB)")
        app = create_app(bench_config(url))
        with app.app_context():
            try:
                if args.db == "postgresql":  # what autovacuum would do after the bulk load, done now
                    db.session.commit()
                    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                        conn.exec_driver_sql("VACUUM ANALYZE")
                counts, size = table_counts(), database_size(args.db, url)
                version = db.session.scalar(sa.text(
                    "SELECT sqlite_version()" if args.db == "sqlite" else "SHOW server_version"))
                months = bulk_seed.month_starts(clinic_today(), args.months)
                month = date.fromisoformat(args.month + "-01") if args.month else months[len(months) // 2]
                if args.wait_idle:
                    wait_until_idle(args.wait_idle)
                load_before = machine_load()
                print(f"month {month:%Y-%m}, {args.repeat} runs each (medians):")
                comparison = compare(month, args.repeat)
                comparison["load_before"], comparison["load_after"] = load_before, machine_load()
            finally:
                db.session.remove()
                db.engine.dispose()
    return {"seeding": seeding, "rows": counts, "database_mb": size, "database_version": version, **comparison}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconciliation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--patients", type=int, default=50_000, help="default %(default)s")
    parser.add_argument("--months", type=int, default=10,
                        help="default %(default)s (2 payments a patient a month: 1,000,000 with the defaults)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--month", metavar="YYYY-MM", help="the month reconciled (default: the middle one seeded)")
    parser.add_argument("--repeat", type=int, default=15, metavar="R", help="timed runs per query (default 15)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before timing, wait up to SECONDS for CPU pressure (PSI avg10) to fall below 5 %%")
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL))
    args = parser.parse_args(argv)
    started, code = datetime.now(UTC), code_version()
    result = benchmark(args)
    if args.json:
        report = {"benchmark": "reconciliation", "started_at": started.isoformat(timespec="seconds"),
                  "db": args.db, "code": code, "machine": machine(), "patients": args.patients,
                  "months": args.months, "seed": args.seed, "repeat": args.repeat, "wait_idle_s": args.wait_idle,
                  "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  **result}
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
