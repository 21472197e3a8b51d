"""Checkout benchmark: the front-desk path for one patient, timed through the service layer.

Per patient: register them, post a ketamine infusion ($450.00) and a consultation (its schedule
price, $0.00), issue the invoice, take a $450.00 money order. Each step is its own transaction
committed right after the service call, as a view does once per request. Each N runs against a
fresh database (a SQLite file in a temporary directory, or a PostgreSQL database created for the
run and dropped after), built by the Alembic migrations and seeded with a small fee schedule.

    .venv/bin/python -m bench.checkout --db sqlite --n 200 --n 2000 --json bench/results/x.json

See bench/README.md for what is measured and the targets.
"""

import argparse
import cProfile
import gc
import hashlib
import json
import math
import os
import platform
import pstats
import re
import sqlite3
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from time import monotonic, perf_counter_ns, process_time_ns, sleep

import flask_migrate
import sqlalchemy as sa

from billing import create_app
from billing.extensions import db
from billing.models import Invoice, InvoiceStatus, MoneyOrderIssuer, Provider, Service, ServiceCategory
from billing.money import Money
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import journal
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.timeutil import clinic_today
from config import TestingConfig

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STEPS = ("create_patient", "charge_infusion", "charge_consult", "issue_invoice", "money_order")
PAYMENT = Money.parse("450.00")
FIRST_SERIAL = 70_000_000

# The targets from the issue.
TARGET_MS_PER_PATIENT = 12.0
TARGET_SCALING = 1.20  # per-patient cost at the largest N over the smallest N


# --- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str, pg_admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database, removed when the block ends."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-checkout-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def bench_config(url: str) -> type[TestingConfig]:
    """The testing settings pointed at the benchmark's database (nobody logs in, so the
    password hash method does not matter)."""
    return type("BenchConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url})


def seed_catalog() -> dict[str, Service | Provider]:
    """The fee schedule the service tests use: consultation ($0.00), infusion ($450.00), a provider."""
    services = {
        "consult": Service(code="CONSULT", name="Consultation", cpt_code="99204", category=ServiceCategory.VISIT,
                           default_price_cents=0),
        "infusion": Service(code="KET-INF", name="Ketamine infusion, first hour", cpt_code="96365",
                            category=ServiceCategory.INFUSION, default_price_cents=45000),
        "addl": Service(code="KET-ADD", name="Infusion, each additional hour", cpt_code="96366",
                        category=ServiceCategory.INFUSION, default_price_cents=15000, unit="hour"),
    }
    provider = Provider(name="Dana Whitfield", credentials="MD", npi="1234567893")
    db.session.add_all([*services.values(), provider])
    db.session.commit()
    return {**services, "provider": provider}


class StatementCounter:
    """Counts the SQL statements an engine sends: BEGIN on SQLite (the app issues it) and SAVEPOINTs
    included, COMMIT and the pool's pre-ping not."""

    def __init__(self, engine: sa.Engine):
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


# --- the timed loop --------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # sqlite or postgresql
    n: int
    total_ns: int = 0
    cpu_ns: int = 0  # CPU time of this process over the loop (the PostgreSQL server's is not in it)
    load_before: dict = field(default_factory=dict)
    load_after: dict = field(default_factory=dict)
    step_ns: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in STEPS})
    step_statements: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STEPS, 0))

    @property
    def per_patient_ns(self) -> list[int]:
        return [sum(parts) for parts in zip(*self.step_ns.values(), strict=True)]


def checkout_steps(catalog: dict, today: date) -> Callable[[int], list[Callable[[], object]]]:
    """For patient i, the five steps; each closure calls one service function (state passes by `box`)."""
    infusion, consult, provider = catalog["infusion"], catalog["consult"], catalog["provider"]

    def steps(i: int) -> list[Callable[[], object]]:
        box = {}

        def create_patient():
            box["patient"] = patient_service.create_patient(
                {"first_name": "Sam", "last_name": f"Bench{i:06d}", "date_of_birth": date(1980, 5, 17),
                 "email": f"sam.bench{i}@example.test", "phone": "555-0100"}, today=today)

        def charge_infusion():
            charge_service.post_charge(box["patient"], charge_service.ChargeInput(
                service=infusion, date_of_service=today, provider=provider, icd10_codes=["F33.2"]), today=today)

        def charge_consult():
            charge_service.post_charge(box["patient"], charge_service.ChargeInput(
                service=consult, date_of_service=today, provider=provider), today=today)

        def issue_invoice():
            invoice_service.issue_invoice(box["patient"], today=today)

        def money_order():
            payment_service.record_money_order(
                box["patient"], PAYMENT,
                payment_service.MoneyOrderInput(
                    issuer=MoneyOrderIssuer.USPS, serial=str(FIRST_SERIAL + i), purchaser="Sam Bench",
                    id_seen=True, signed_in_front_of_staff=True, security_features_checked=True),
                received_date=today, today=today)

        return [create_patient, charge_infusion, charge_consult, issue_invoice, money_order]

    return steps


def run_checkouts(run: Run, steps_for: Callable[[int], list[Callable[[], object]]],
                  counter: StatementCounter) -> None:
    """The timed loop: every step is one service call and one commit."""
    clock = perf_counter_ns
    session = db.session
    run.load_before = machine_load()
    cpu_start, start = process_time_ns(), clock()
    for i in range(run.n):
        for name, step in zip(STEPS, steps_for(i), strict=True):
            before_statements = counter.count
            t0 = clock()
            step()
            session.commit()
            run.step_ns[name].append(clock() - t0)
            run.step_statements[name] += counter.count - before_statements
    run.total_ns, run.cpu_ns = clock() - start, process_time_ns() - cpu_start
    run.load_after = machine_load()


def check_books(n: int) -> None:
    """After the loop (untimed): every invoice paid, receivables back to zero, the cash held."""
    paid = db.session.scalar(
        sa.select(sa.func.count()).select_from(Invoice).where(Invoice.status == InvoiceStatus.PAID))
    if paid != n:
        raise SystemExit(f"Expected {n} paid invoices, found {paid}.")
    if journal.balance(journal.RECEIVABLES) != Money.zero():
        raise SystemExit(f"Receivables should be zero, are {journal.balance(journal.RECEIVABLES)}.")
    if journal.balance(journal.UNDEPOSITED) != PAYMENT * n:
        raise SystemExit(f"Undeposited funds should be {PAYMENT * n}, are {journal.balance(journal.UNDEPOSITED)}.")


def benchmark(kind: str, n: int, pg_admin_url: str, profile_path: Path | None = None,
              wait_idle: float = 0) -> tuple[Run, str]:
    """One run of N checkouts on a fresh database; returns it and the database server's version."""
    with fresh_database(kind, pg_admin_url) as url:
        app = create_app(bench_config(url))
        with app.app_context():
            try:
                flask_migrate.upgrade()
                catalog = seed_catalog()
                today = clinic_today()
                db.session.commit()
                version = db.session.scalar(sa.text(
                    "SELECT sqlite_version()" if kind == "sqlite" else "SHOW server_version"))
                db.session.commit()
                run = Run(kind=kind, n=n)
                counter = StatementCounter(db.engine)
                if wait_idle:
                    wait_until_idle(wait_idle)
                gc.collect()
                profiler = cProfile.Profile() if profile_path else None
                if profiler:
                    profiler.enable()
                run_checkouts(run, checkout_steps(catalog, today), counter)
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(profile_path)
                check_books(n)
            finally:
                db.session.remove()
                db.engine.dispose()
    return run, version


# --- reporting -------------------------------------------------------------------------------


def p95(values: list[int]) -> float:
    """The 95th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def stats_ms(values_ns: list[int]) -> dict[str, float]:
    ms = 1e6
    return {"mean": round(statistics.fmean(values_ns) / ms, 3), "median": round(statistics.median(values_ns) / ms, 3),
            "p95": round(p95(values_ns) / ms, 3), "min": round(min(values_ns) / ms, 3),
            "max": round(max(values_ns) / ms, 3)}


def summarise(run: Run) -> dict:
    per_patient = stats_ms(run.per_patient_ns)
    return {
        "n": run.n,
        "total_s": round(run.total_ns / 1e9, 3),
        "per_patient_ms": per_patient,
        "loop_ms_per_patient": round(run.total_ns / run.n / 1e6, 3),
        "cpu_ms_per_patient": round(run.cpu_ns / run.n / 1e6, 3),
        "load_before": run.load_before,
        "load_after": run.load_after,
        "steps_ms": {s: {**stats_ms(run.step_ns[s]), "statements": round(run.step_statements[s] / run.n, 2)}
                     for s in STEPS},
        "statements_per_patient": round(sum(run.step_statements.values()) / run.n, 2),
        "target_ms_per_patient": TARGET_MS_PER_PATIENT,
        "meets_target": per_patient["mean"] <= TARGET_MS_PER_PATIENT,
        "raw_step_ns": run.step_ns,
    }


def compare(small: dict, large: dict) -> dict:
    ratio = large["per_patient_ms"]["mean"] / small["per_patient_ms"]["mean"]
    median_ratio = large["per_patient_ms"]["median"] / small["per_patient_ms"]["median"]
    return {"small_n": small["n"], "large_n": large["n"], "mean_ratio": round(ratio, 3),
            "median_ratio": round(median_ratio, 3), "target_ratio": TARGET_SCALING,
            "meets_target": ratio <= TARGET_SCALING}


def machine_load() -> dict:
    """How busy the machine is: load average and CPU pressure (share of time something waited for a CPU)."""
    load = {"loadavg_1m": os.getloadavg()[0]}
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0].split()
        load["cpu_pressure_avg10"] = float(dict(kv.split("=") for kv in some[1:])["avg10"])
    except (OSError, KeyError, ValueError):
        pass
    return load


def code_version() -> dict:
    """A fingerprint of the code measured (the app, its config and migrations), since the tree changes."""
    root = Path(__file__).resolve().parent.parent
    files = sorted([root / "config.py", *(root / "billing").rglob("*.py"), *(root / "migrations").rglob("*.py")])
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    newest = max(files, key=lambda f: f.stat().st_mtime)
    return {"sha256": digest.hexdigest()[:16], "files": len(files), "newest_file": str(newest.relative_to(root)),
            "newest_mtime": datetime.fromtimestamp(newest.stat().st_mtime, UTC).isoformat(timespec="seconds")}


def wait_until_idle(limit_s: float, threshold: float = 5.0) -> None:
    """On a shared machine: wait (at most `limit_s`) until other processes leave the CPUs alone."""
    deadline = monotonic() + limit_s
    while monotonic() < deadline and machine_load().get("cpu_pressure_avg10", 0) > threshold:
        sleep(2)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "sqlite_library": sqlite3.sqlite_version,
            "sqlalchemy": sa.__version__, "platform": platform.platform()}


def print_run(kind: str, result: dict, label: str = "") -> None:
    print(f"\n{kind}, N={result['n']}{' (' + label + ')' if label else ''}: {result['total_s']:.2f} s for the loop, "
          f"{result['statements_per_patient']:g} SQL statements per patient, "
          f"{result['cpu_ms_per_patient']:.2f} ms of this process's CPU per patient")
    load = result["load_before"]
    busy = (load["cpu_pressure_avg10"] > 10 if "cpu_pressure_avg10" in load
            else load["loadavg_1m"] > len(os.sched_getaffinity(0)))
    if busy:
        print(f"  warning: the machine was busy when the loop started ({load}); timings are inflated")
    print(f"  {'step':<16} {'mean ms':>8} {'median':>8} {'p95':>8} {'stmts':>6}")
    for step, s in result["steps_ms"].items():
        print(f"  {step:<16} {s['mean']:>8.3f} {s['median']:>8.3f} {s['p95']:>8.3f} {s['statements']:>6g}")
    pp = result["per_patient_ms"]
    verdict = "PASS" if result["meets_target"] else "FAIL"
    print(f"  {'per patient':<16} {pp['mean']:>8.3f} {pp['median']:>8.3f} {pp['p95']:>8.3f}"
          f"   target <= {TARGET_MS_PER_PATIENT:g} ms (mean): {verdict}")


def to_json(report: dict) -> str:
    """Indented JSON with each list of raw timings kept on one line."""
    text = json.dumps(report, indent=1)
    return re.sub(r"\[([\d,\s]+)\]", lambda m: "[" + ", ".join(x.strip() for x in m[1].split(",")) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.checkout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--n", type=int, action="append", metavar="N",
                        help="patients per run; repeat for several runs (default 200)")
    parser.add_argument("--repeat", type=int, default=1, metavar="R",
                        help="run each N R times, each on a fresh database, and judge the fastest "
                             "(the one least disturbed by other processes); all are recorded (default 1)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for the CPU pressure (PSI avg10) to fall below "
                             "5 %% (for shared machines; default 0: do not wait)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results (with raw timings) here")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL),
                        help="PostgreSQL database to connect to for CREATE/DROP DATABASE (default %(default)s)")
    parser.add_argument("--profile", type=Path, metavar="PATH",
                        help="run the loop under cProfile, write the stats to PATH (timings are then inflated)")
    args = parser.parse_args(argv)
    sizes = args.n or [200]
    if any(n < 1 for n in sizes) or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")

    started, code = datetime.now(UTC), code_version()
    print(f"code {code['sha256']} (newest file {code['newest_file']}, {code['newest_mtime']})")
    best_runs, all_runs, server_version = [], [], None
    for n in sizes:
        attempts = []
        for attempt in range(args.repeat):
            profile_path = None
            if args.profile:
                suffix = (f".n{n}" if len(sizes) > 1 else "") + (f".r{attempt + 1}" if args.repeat > 1 else "")
                profile_path = args.profile.with_name(args.profile.stem + suffix + args.profile.suffix)
            run, server_version = benchmark(args.db, n, args.pg_admin_url, profile_path, args.wait_idle)
            result = summarise(run)
            attempts.append(result)
            print_run(args.db, result, f"run {attempt + 1}/{args.repeat}" if args.repeat > 1 else "")
            if profile_path:
                print(f"\n  cProfile of the loop (top 25 by cumulative time) -> {profile_path}")
                pstats.Stats(str(profile_path), stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        best = min(attempts, key=lambda r: r["per_patient_ms"]["mean"])
        if args.repeat > 1:
            means = ", ".join(f"{r['per_patient_ms']['mean']:.3f}" for r in attempts)
            print(f"\n{args.db}, N={n}: mean ms per patient over {args.repeat} runs: {means}; "
                  f"judged on the fastest, {best['per_patient_ms']['mean']:.3f}")
        best_runs.append(best)
        all_runs.extend(attempts)

    comparison = None
    if len(best_runs) > 1:
        small, large = min(best_runs, key=lambda r: r["n"]), max(best_runs, key=lambda r: r["n"])
        comparison = compare(small, large)
        verdict = "PASS" if comparison["meets_target"] else "FAIL"
        print(f"\nper-patient cost, N={large['n']} over N={small['n']}: mean x{comparison['mean_ratio']:.3f}, "
              f"median x{comparison['median_ratio']:.3f}   target <= x{TARGET_SCALING:.2f} (mean): {verdict}")

    if code_version()["sha256"] != code["sha256"]:
        print("\nwarning: the code changed while the benchmark ran; the runs may have measured different versions")
    for r in all_runs:
        r["judged"] = any(r is b for b in best_runs)
    if args.json:
        report = {
            "benchmark": "checkout", "started_at": started.isoformat(timespec="seconds"), "db": args.db,
            "code": code,
            "database_version": server_version, "profiled": bool(args.profile), "repeat": args.repeat,
            "wait_idle_s": args.wait_idle,
            "machine": machine(), "steps": list(STEPS),
            "targets": {"ms_per_patient_mean": TARGET_MS_PER_PATIENT, "scaling_ratio": TARGET_SCALING},
            "summary": [{k: r[k] for k in ("n", "total_s", "per_patient_ms", "cpu_ms_per_patient",
                                           "statements_per_patient", "meets_target")} for r in best_runs],
            "comparison": comparison, "runs": all_runs,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(report))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
