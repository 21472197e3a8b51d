from flask import Blueprint

bp = Blueprint("pay", __name__, url_prefix="/pay")

from billing.pay import routes  # noqa: E402,F401
