"""Export memory benchmark: the peak memory of streaming a CSV of more than 1,000,000 rows to a file.

A fresh database (SQLite file or PostgreSQL database, as for the other benchmarks) is filled by
`flask billing seed-demo --patients N --months M` (the bulk generator); then the journal is exported
whole as a QuickBooks Online journal import CSV, one row per journal line, by the command a
bookkeeper runs, `flask billing export quickbooks --from ... --to ... -o FILE`, in a subprocess.

Memory is the child's peak resident set size (`ru_maxrss` from `os.wait4`, in KiB on Linux): all the
process held at its worst moment, the interpreter, Flask, SQLAlchemy, the driver's buffers and the
SQLite page cache included. tracemalloc would see only Python's own allocations and miss the
driver's C buffers, which is where a non-streamed result would sit. The same command over a range
with no entries gives the process's floor (imports and app), so the export's own share is the
difference. Target: peak under 150 MB. See bench/README.md.

    .venv/bin/python -m bench.export_memory --db sqlite --json bench/results/x.json
"""

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.checkout import DEFAULT_PG_ADMIN_URL, code_version, fresh_database, machine, machine_load
from bench.reconciliation import migrate, run_flask, seed_with_cli, write_report

TARGET_MB = 150


def export(url: str, start: str, end: str, output: Path) -> dict:
    """Run the QuickBooks export in a subprocess; its wall time and peak resident memory."""
    args = ("billing", "export", "quickbooks", "--from", start, "--to", end, "-o", str(output))
    _, errors, wall, usage = run_flask(url, *args)
    return {"command": "flask --app billing " + " ".join(args[:-1] + ("FILE",)), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "message": errors.strip().splitlines()[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--patients", type=int, default=10_000, help="default %(default)s")
    parser.add_argument("--months", type=int, default=10,
                        help="default %(default)s (about 5.3 journal lines a payment: 1.05 million with the defaults)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL))
    args = parser.parse_args(argv)
    started, code = datetime.now(UTC), code_version()
    with fresh_database(args.db, args.pg_admin_url) as url, tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        migrate(url)
        print(f"seeding {args.patients} patients x {args.months} months on {args.db} ...")
        seeding = seed_with_cli(url, args.patients, args.months, args.seed)
        print(f"  {seeding['output']} in {seeding['wall_s']} s")
        floor = export(url, "1990-01-01", "1990-01-31", Path(tmp) / "empty.csv")
        load_before = machine_load()
        output = Path(tmp) / "journal.csv"
        run = export(url, "2000-01-01", "2099-12-31", output)
        with output.open("rb") as f:
            rows = sum(1 for _ in f) - 1  # no field holds a line break (descriptions are single lines)
        run.update(rows=rows, file_mb=round(output.stat().st_size / 2**20, 1),
                   load_before=load_before, load_after=machine_load())
    meets = run["peak_rss_mb"] < TARGET_MB
    print(f"  floor (an empty range): peak {floor['peak_rss_mb']} MB")
    print(f"  {rows:,} rows ({run['file_mb']} MB) in {run['wall_s']} s: peak {run['peak_rss_mb']} MB "
          f"(+{run['peak_rss_mb'] - floor['peak_rss_mb']:.1f} over the floor)   target < {TARGET_MB} MB: "
          f"{'PASS' if meets else 'FAIL'}")
    if rows < 1_000_000:
        print("  warning: fewer than 1,000,000 rows; seed more (--patients)")
    if args.json:
        report = {"benchmark": "export_memory", "started_at": started.isoformat(timespec="seconds"), "db": args.db,
                  "code": code, "machine": machine(), "patients": args.patients, "months": args.months,
                  "seed": args.seed, "seeding": seeding, "floor": floor, "export": run,
                  "target_mb": TARGET_MB, "meets_target": meets}
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
