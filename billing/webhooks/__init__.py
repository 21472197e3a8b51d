from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/stripe")

from billing.webhooks import routes  # noqa: E402,F401
