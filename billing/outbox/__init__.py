from flask import Blueprint

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

from billing.outbox import routes  # noqa: E402,F401
