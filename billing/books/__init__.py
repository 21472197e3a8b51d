from flask import Blueprint

bp = Blueprint("books", __name__, url_prefix="/books")

from billing.books import routes  # noqa: E402,F401
from billing.books import funding_routes  # noqa: E402,F401
from billing.books import bank_routes  # noqa: E402,F401
from billing.books import daily_routes, deposit_routes  # noqa: E402,F401
from billing.books import report_routes  # noqa: E402,F401
from billing.books import period_routes  # noqa: E402,F401
from billing.books import reconciliation_routes  # noqa: E402,F401
