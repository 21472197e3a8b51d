from flask import render_template

from billing.access import roles_required
from billing.books import bp
from billing.models import Role
from billing.timeutil import clinic_today


@bp.route("/")
@roles_required(Role.BOOKKEEPER)
def home():
    return render_template("books/home.html", today=clinic_today())
