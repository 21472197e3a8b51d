from flask import Blueprint

bp = Blueprint("frontdesk", __name__, url_prefix="/frontdesk")

from billing.frontdesk import routes  # noqa: E402,F401
