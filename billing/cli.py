"""`flask billing ...`: commands for set-up and scheduled jobs."""

import random
import sys

import click
from flask import g
from flask.cli import AppGroup

from billing import bulk_seed
from billing.demo import seed_activity, seed_catalog
from billing.exports import beancount, journal_rows, quickbooks
from billing.extensions import db
from billing.models import Role
from billing.money import Money
from billing.outbox import delivery
from billing import stripe_payouts
from billing.services import ServiceError, fundings, payouts, settings as settings_service, users
from billing.timeutil import clinic_today

billing_cli = AppGroup("billing", help="Billing administration commands.")

DEMO_CLINIC = {
    "name": "Riverside Ketamine & Infusion Center",
    "address_line1": "410 Harbor Street, Suite 200",
    "city": "Portland",
    "state": "ME",
    "postal_code": "04101",
    "phone": "(207) 555-0142",
    "email": "billing@riverside-infusion.example",
    "tin": "12-3456789",
    "npi": "1245319599",
    "timezone": "America/New_York",
    "invoice_prefix": "INV",
    "receipt_prefix": "RCT",
}
DEMO_USERS = [
    ("admin@riverside-infusion.example", "Alex Morgan", [Role.ADMIN]),
    ("frontdesk@riverside-infusion.example", "Jamie Rivera", [Role.FRONTDESK]),
    ("bookkeeper@riverside-infusion.example", "Pat Chen", [Role.BOOKKEEPER]),
]
BULK_ABOVE = 200  # more demo patients than this are written by billing.bulk_seed
WORDS = ("harbor", "maple", "granite", "lantern", "meadow", "copper", "willow", "summit", "pebble",
         "canyon", "orchard", "beacon", "falcon", "juniper", "tidal", "cedar", "aurora", "quartz")


def _cli_actor() -> None:
    g.audit_actor = "cli"


def _demo_password(rng: random.Random) -> str:
    return "-".join(rng.choice(WORDS) for _ in range(3)) + f"-{rng.randrange(10, 99)}"


def _roles_option(f):
    return click.option("--role", "roles", multiple=True, required=True,
                        type=click.Choice([r.value for r in Role]), help="Repeat for several roles.")(f)


@billing_cli.command("create-user")
@click.argument("email")
@click.option("--name", required=True, help="The person's full name.")
@_roles_option
@click.password_option(help="Prompted for when not given.")
def create_user(email: str, name: str, roles: tuple[str, ...], password: str) -> None:
    """Create a staff account (use it for the first admin)."""
    _cli_actor()
    try:
        user = users.create_user(email, name, password, [Role(r) for r in roles])
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    db.session.commit()
    click.echo(f"Created {user.email} ({', '.join(sorted(user.roles))}).")


@billing_cli.command("reset-password")
@click.argument("email")
@click.password_option(help="Prompted for when not given.")
def reset_password(email: str, password: str) -> None:
    """Set a new password for a staff account."""
    _cli_actor()
    user = users.find_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with email {email}.")
    try:
        users.reset_password(user, password)
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    db.session.commit()
    click.echo(f"Password reset for {user.email}.")


@billing_cli.command("seed-demo")
@click.option("--seed", default=1, show_default=True, help="Same seed, same demo clinic and passwords.")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when users already exist.")
@click.option("--patients", default=40, show_default=True, type=click.IntRange(min=0),
              help=f"Demo patients with months of visits and payments (0: none; over {BULK_ABOVE}: bulk).")
@click.option("--months", default=3, show_default=True, type=click.IntRange(min=1, max=120),
              help="Months of activity before the current month.")
@click.option("--bulk", is_flag=True, help="Write rows in bulk (fast, for benchmarks: no audit events or "
                                           "receipts) instead of through the services.")
def seed_demo(seed: int, if_empty: bool, patients: int, months: int, bulk: bool) -> None:
    """Fill an empty database with a demo clinic, one user per role (prints the passwords once) and
    months of patients, visits, invoices and payments (in bulk, two visits a patient a month)."""
    _cli_actor()
    if db.session.query(users.User.id).first() is not None:
        if if_empty:
            click.echo("Demo data already present; sign in with the passwords printed at first run.")
            click.echo("Forgot one? flask --app billing billing reset-password EMAIL")
            return
        raise click.ClickException("The database already has users; seed-demo only fills an empty database.")
    rng = random.Random(seed)
    settings_service.update_settings(DEMO_CLINIC)
    seed_catalog()
    logins = []
    for email, name, roles in DEMO_USERS:
        password = _demo_password(rng)
        users.create_user(email, name, password, roles)
        logins.append((roles[0].label, email, password))
    if bulk or patients > BULK_ABOVE:
        stats = _seed_bulk(rng, patients, months)
    else:
        stats = seed_activity(rng, today=clinic_today(), months=months, patients=patients, progress=click.echo)
    db.session.commit()
    click.echo(f"Seeded the demo clinic {DEMO_CLINIC['name']!r} (seed {seed}).")
    click.echo(f"Seeded {stats['patients']} patients, {stats['charges']} charges, {stats['invoices']} invoices, "
               f"{stats['payments']} payments over {stats['months']} months.")
    if stats.get("payouts") is not None:
        click.echo(f"Books: {stats['card_payments']} card payments, {stats['payouts']} Stripe payouts, "
                   f"{stats['deposits']} deposits, {stats['fundings']} CareCredit fundings, "
                   f"{stats['daily_closes']} closed days.")
    click.echo("Demo logins (shown only now):")
    for label, email, password in logins:
        click.echo(f"  {label:<11} {email:<40} {password}")


def _seed_bulk(rng: random.Random, patients: int, months: int) -> dict:
    """billing.bulk_seed with a progress bar over the payments (on standard error)."""
    db.session.commit()  # the clinic, catalog and users first: the bulk writer commits as it goes
    with click.progressbar(length=bulk_seed.expected_payments(patients, months), file=sys.stderr,
                           label=f"Writing {patients} patients' visits and payments in bulk") as bar:
        stats = bulk_seed.seed(rng, today=clinic_today(), patients=patients, months=months, progress=bar.update)
    return vars(stats)


@billing_cli.command("send-mail")
@click.option("--limit", default=50, show_default=True, help="Most messages to attempt in this run.")
def send_mail(limit: int) -> None:
    """Deliver the outbox's due email (run it from cron every minute or so)."""
    sent, failed = delivery.deliver_due(limit=limit)
    click.echo(f"Sent {sent}, failed {failed}.")


# --- Stripe ------------------------------------------------------------------------------------------

stripe_cli = AppGroup("stripe", help="Stripe payouts: import the reconciliation report, fetch from the API.")
billing_cli.add_command(stripe_cli)


@stripe_cli.command("import-payouts")
@click.argument("report", type=click.File("r", encoding="utf-8-sig"))
def import_payouts(report) -> None:
    """Post the payouts in Stripe's itemized payout reconciliation CSV (safe to run again)."""
    _cli_actor()
    try:
        result = payouts.import_reconciliation_csv(report.read())
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    db.session.commit()
    click.echo(result.message())


@stripe_cli.command("fetch-payouts")
def fetch_payouts() -> None:
    """Fetch and post the payouts Stripe reported paid (run it from cron after the webhook)."""
    _cli_actor()
    posted, failed = stripe_payouts.fetch_unposted()
    click.echo(f"Posted {len(posted)} payout{'s' if len(posted) != 1 else ''}"
               + (f": {', '.join(posted)}." if posted else "."))
    for payout_id, reason in failed:
        click.echo(f"Not posted {payout_id}: {reason}", err=True)
    if failed:
        click.get_current_context().exit(1)


# --- CareCredit --------------------------------------------------------------------------------------

carecredit_cli = AppGroup("carecredit", help="CareCredit fundings: import the Provider Center's funding report.")
billing_cli.add_command(carecredit_cli)


@carecredit_cli.command("import")
@click.argument("report", type=click.File("rb"))
def import_carecredit(report) -> None:
    """Post the fundings of a CareCredit funding report (CSV) and match their charges to our CareCredit
    payments, as the books page does (safe to run again). A malformed file exits with status 1, naming
    the line, and nothing is written."""
    _cli_actor()
    try:
        text = report.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{report.name} is not a text CSV file. Download the funding report from the "
                                   "CareCredit Provider Center again.") from None
    try:
        result = fundings.import_funding_csv(text, today=clinic_today())
    except ServiceError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    db.session.commit()
    click.echo(result.message())
    posted = [f.id for f in result.posted]
    summaries = fundings.summaries(ids=posted, limit=len(posted)) if posted else []
    for summary in sorted(summaries, key=lambda s: (s.funding.funded_on, s.funding.reference)):
        funding = summary.funding
        late = f", {summary.late} funded late" if summary.late else ""
        short = (f", {summary.fee_difference} more in fees than the plans'" if summary.fee_difference.is_positive
                 else "")
        click.echo(f"  {funding.reference} {funding.funded_on:%m/%d/%Y} net {Money(funding.net_cents)}: "
                   f"{summary.matched} of {summary.lines} charge{'s' if summary.lines != 1 else ''} matched to "
                   f"payments{late}{short}.")
    unmatched = sum(s.lines - s.matched for s in summaries)
    if unmatched:
        click.echo(f"{unmatched} charge{'s' if unmatched != 1 else ''} matched no CareCredit payment of ours: see "
                   "Unmatched CareCredit in the books.")


# --- exports -----------------------------------------------------------------------------------------

export_cli = AppGroup("export", help="The journal for a date range, for the bookkeeper's accounting tool.")
billing_cli.add_command(export_cli)


def _export_options(f):
    day = click.DateTime(formats=["%Y-%m-%d"])
    f = click.option("-o", "--output", required=True, type=click.File("w", encoding="utf-8", atomic=True),
                     help="The file to write (written whole or not at all; - for standard output).")(f)
    f = click.option("--to", "end", required=True, type=day, help="Last day, YYYY-MM-DD (included).")(f)
    return click.option("--from", "start", required=True, type=day, help="First day, YYYY-MM-DD.")(f)


def _write_export(kind: str, start, end, output, write) -> None:
    """Stream an export to `output` with a progress bar (on standard error) over the journal entries."""
    start, end = start.date(), end.date()
    if start > end:
        raise click.BadParameter(f"--from {start} is after --to {end}; give the first day first.",
                                 param_hint="--from")
    count = journal_rows.count_entries(start, end)
    with click.progressbar(length=count, label=f"Exporting {count} journal entries",
                           file=sys.stderr) as bar:
        for chunk in write(start, end, bar.update):
            output.write(chunk)
    click.echo(f"Wrote {count} journal entries from {start} to {end} as {kind} to {output.name}.", err=True)


@export_cli.command("beancount")
@_export_options
@click.option("--opening-balances", is_flag=True,
              help="Start with every account's balance the day before --from (the file then balances to the "
                   "trial balance at --to, not only the period's movements).")
def export_beancount(start, end, output, opening_balances: bool) -> None:
    """The journal as a Beancount file (bean-check verifies its balances against the app's trial balance)."""
    _write_export("Beancount", start, end, output, lambda s, e, progress: beancount.lines(
        s, e, opening_balances=opening_balances, progress=progress))


@export_cli.command("quickbooks")
@_export_options
def export_quickbooks(start, end, output) -> None:
    """The journal as a QuickBooks Online journal-entry import CSV."""
    _write_export("QuickBooks CSV", start, end, output, lambda s, e, progress: quickbooks.lines(s, e, progress=progress))


# --- reports -----------------------------------------------------------------------------------------

report_cli = AppGroup("report", help="The bookkeeper's reports, written to a file.")
billing_cli.add_command(report_cli)


class _Month(click.ParamType):
    name = "month"

    def convert(self, value, param, ctx):
        from billing.reports.reconciliation import parse_month

        month = parse_month(str(value))
        if month is None:
            self.fail(f"{value!r} is not a month; write it YYYY-MM, like 2026-03.", param, ctx)
        return month


@report_cli.command("reconciliation")
@click.option("--month", required=True, type=_Month(), help="The month, YYYY-MM.")
@click.option("--format", "file_format", required=True, type=click.Choice(["csv", "pdf"]), help="csv or pdf.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The file to write.")
def report_reconciliation(month, file_format: str, output: str) -> None:
    """The monthly reconciliation (methods, clearing accounts, A/R roll-forward, trial balance) as CSV or PDF."""
    from billing.documents.reconciliation import reconciliation_pdf
    from billing.exports.csvstream import csv_lines
    from billing.reports import reconciliation

    report = reconciliation.reconciliation(month)
    if file_format == "pdf":
        with click.open_file(output, "wb", atomic=True) as out:
            out.write(reconciliation_pdf(report).pdf)
    else:
        with click.open_file(output, "w", encoding="utf-8", atomic=True) as out:
            for chunk in csv_lines(reconciliation.CSV_HEADER, reconciliation.csv_rows(report)):
                out.write(chunk)
    unexplained = [a.code for a in report.clearing if a.unexplained] + (
        ["1100 (roll-forward)"] if report.receivables.difference else [])
    click.echo(f"Wrote the reconciliation for {month:%Y-%m} as {file_format.upper()} to {output}."
               + (f" Not tied to the journal: {', '.join(unexplained)}." if unexplained else ""), err=True)
