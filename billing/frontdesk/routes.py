from flask import render_template

from billing.access import roles_required
from billing.frontdesk import bp
from billing.models import Role
from billing.timeutil import clinic_today


@bp.route("/")
@roles_required(Role.FRONTDESK)
def home():
    return render_template("frontdesk/home.html", today=clinic_today())
