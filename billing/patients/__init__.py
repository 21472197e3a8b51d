from flask import Blueprint

bp = Blueprint("patients", __name__, url_prefix="/patients")

from billing.patients import portal_routes, routes, superbill_routes  # noqa: E402,F401
