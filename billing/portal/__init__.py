from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal")

from billing.portal import pay_routes, routes  # noqa: E402,F401
