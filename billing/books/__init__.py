from flask import Blueprint

bp = Blueprint("books", __name__, url_prefix="/books")

from billing.books import routes  # noqa: E402,F401
