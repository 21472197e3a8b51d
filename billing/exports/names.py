"""The accounts' names in the bookkeeper's tools: Beancount and QuickBooks Online, mapped in settings."""

import re
from dataclasses import dataclass

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Account, AccountType
from billing.services import ServiceError, audit

ROOTS = {AccountType.ASSET: "Assets", AccountType.LIABILITY: "Liabilities", AccountType.INCOME: "Income",
         AccountType.EXPENSE: "Expenses"}
# Beancount: a root, then components starting with a capital letter or digit.
BEANCOUNT_NAME = re.compile(r"^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z0-9][A-Za-z0-9-]*)+$")
QUICKBOOKS_MAX = 100


def _component(text: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", text)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Account"


def default_beancount_name(account_type: AccountType, name: str) -> str:
    """Derived from the type and the name: "Revenue: infusions" (income) → Income:Revenue:Infusions."""
    return ":".join([ROOTS[AccountType(account_type)], *(_component(part) for part in name.split(":"))])


@dataclass(frozen=True)
class ExportName:
    account_id: int
    code: str
    name: str
    type: AccountType
    beancount: str  # as set, "" for the default
    quickbooks: str

    @property
    def beancount_default(self) -> str:
        return default_beancount_name(self.type, self.name)

    @property
    def beancount_name(self) -> str:
        return self.beancount or self.beancount_default

    @property
    def quickbooks_name(self) -> str:
        return self.quickbooks or self.name


def export_names() -> list[ExportName]:
    """Every account with its export names, in code order."""
    rows = db.session.execute(sa.select(Account.id, Account.code, Account.name, Account.type, Account.beancount_name,
                                        Account.quickbooks_name).order_by(Account.code))
    return [ExportName(*row) for row in rows]


def names_by_id() -> dict[int, ExportName]:
    return {n.account_id: n for n in export_names()}


def set_export_names(names: dict[int, tuple[str, str]]) -> int:
    """Set accounts' (beancount, quickbooks) names, "" for the default; returns how many changed.
    Raises ServiceError naming the field (beancount-<id> / quickbooks-<id>) of an invalid or duplicate
    name, before anything is written. Writes the accounts and one audit event per change."""
    accounts = {a.id: a for a in db.session.scalars(sa.select(Account).order_by(Account.code))}
    cleaned: dict[int, tuple[str, str]] = {}
    for account_id, (bean, qb) in names.items():
        account = accounts.get(account_id)
        if account is None:
            raise ServiceError(f"There is no account #{account_id}.")
        bean, qb = bean.strip(), qb.strip()
        if bean and not BEANCOUNT_NAME.match(bean):
            raise ServiceError(
                f"{bean!r} is not a Beancount account name: it starts with Assets, Liabilities, Equity, Income or "
                "Expenses, then parts separated by colons, each starting with a capital letter or digit "
                "(letters, digits and dashes only), like Assets:Bank:Checking.", f"beancount-{account_id}")
        if len(bean) > 120:
            raise ServiceError("A Beancount name has at most 120 characters.", f"beancount-{account_id}")
        if len(qb) > QUICKBOOKS_MAX:
            raise ServiceError(f"A QuickBooks name has at most {QUICKBOOKS_MAX} characters.", f"quickbooks-{account_id}")
        cleaned[account_id] = (bean, qb)
    final = {a.id: cleaned.get(a.id, (a.beancount_name, a.quickbooks_name)) for a in accounts.values()}
    seen_bean: dict[str, int] = {}
    seen_qb: dict[str, int] = {}
    for account_id, (bean, qb) in final.items():
        account = accounts[account_id]
        bean = bean or default_beancount_name(account.type, account.name)
        qb = (qb or account.name).casefold()
        for seen, key, field in ((seen_bean, bean, "beancount"), (seen_qb, qb, "quickbooks")):
            if key in seen:
                other = accounts[seen[key]]
                wrong = account_id if account_id in cleaned else seen[key]
                raise ServiceError(f"{other.code} {other.name} and {account.code} {account.name} would export "
                                   f"under the same {field.title()} name; give each its own.", f"{field}-{wrong}")
            seen[key] = account_id
    changed = 0
    for account_id, (bean, qb) in cleaned.items():
        account = accounts[account_id]
        if (account.beancount_name, account.quickbooks_name) == (bean, qb):
            continue
        changes = {k: [old, new] for k, old, new in (("beancount_name", account.beancount_name, bean),
                                                     ("quickbooks_name", account.quickbooks_name, qb)) if old != new}
        account.beancount_name, account.quickbooks_name = bean, qb
        audit.record("account.export_names", account, changes=changes)
        changed += 1
    db.session.flush()
    return changed
