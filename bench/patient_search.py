"""Patient search at clinic scale: the front desk's search box against 100,000 patients.

Fills a fresh database (SQLite file or a new PostgreSQL database) with N patients through a bulk
insert (the rows the service would write, without the per-patient audit), then times
billing.services.patients.search for each kind of query the desk types.

    .venv/bin/python -m bench.patient_search --db sqlite --n 100000
    .venv/bin/python -m bench.patient_search --db postgresql --n 100000 --json bench/results/search.json
"""

import argparse
import json
import random
import statistics
import tempfile
import uuid
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter_ns

import flask_migrate
import sqlalchemy as sa

from billing import create_app
from billing.extensions import db
from billing.models import Patient
from billing.models.patients import search_key
from billing.services import patients as patient_service
from config import TestingConfig

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
        "Okafor", "Nguyen", "Kowalski", "O'Brien", "Schmidt", "Rossi", "Haddad", "Kim", "Patel", "Cohen"]
FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chidi", "Avery"]
REPEATS = 50


def _database(kind: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'search.sqlite3'}", lambda: None
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), drop


def _fill(n: int, rng: random.Random) -> None:
    rows = []
    for i in range(1, n + 1):
        # Surnames get a numeric suffix beyond the common list, so the table is not 40 names deep.
        last = rng.choice(LAST) + ("" if i % 5 == 0 else f"{rng.randrange(1, 2000)}".translate(
            str.maketrans("0123456789", "abcdefghij")))
        first = rng.choice(FIRST)
        rows.append({
            "account_number": f"P{i:06d}", "first_name": first, "last_name": last.capitalize(),
            "search_name": search_key(last, first), "date_of_birth": date(1940, 1, 1) + timedelta(days=rng.randrange(25_000)),
            "email": "", "phone": "", "address_line1": "", "address_line2": "", "city": "", "state": "",
            "postal_code": "", "archived": i % 50 == 0,
        })
        if len(rows) == 5000:
            db.session.execute(sa.insert(Patient), rows)
            rows.clear()
    if rows:
        db.session.execute(sa.insert(Patient), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("ANALYZE patients"))
    else:
        db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


def _time(query: str) -> dict:
    samples, found = [], 0
    for _ in range(REPEATS):
        start = perf_counter_ns()
        found = len(patient_service.search(query))
        samples.append((perf_counter_ns() - start) / 1e6)
        db.session.rollback()
    samples.sort()
    return {"query": query, "results": found, "median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3)}


def run(kind: str, n: int) -> dict:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = _database(kind, Path(tmp))
        app = create_app(type("BenchConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
        try:
            with app.app_context():
                flask_migrate.upgrade()
                _fill(n, rng)
                known = db.session.scalars(sa.select(Patient).where(Patient.id == n // 2 + 1)).one()
                queries = ["smith", "smi", "sm", known.search_name[:6], f"{known.first_name} {known.last_name}",
                           known.date_of_birth.strftime("%m/%d/%Y"), known.account_number,
                           str(int(known.account_number[1:])), "zzzz"]
                results = [_time(q) for q in queries]
                db.engine.dispose()
        finally:
            drop()
    return {"db": kind, "n": n, "repeats": REPEATS, "queries": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.db, args.n)
    print(f"{args.db}, {args.n:,} patients, median and p95 of {REPEATS} runs per query")
    print(f"{'query':<28} {'found':>6} {'median ms':>10} {'p95 ms':>8}")
    for row in result["queries"]:
        print(f"{row['query']:<28} {row['results']:>6} {row['median_ms']:>10.3f} {row['p95_ms']:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
