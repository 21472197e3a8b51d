from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from billing.admin import catalog_routes, routes  # noqa: E402,F401
from billing.admin import export_routes  # noqa: E402,F401
from billing.admin import period_routes  # noqa: E402,F401
