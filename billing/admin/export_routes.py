"""The accounts' names in the bookkeeper's tools (Beancount, QuickBooks Online), used by the journal exports."""

from flask import flash, redirect, render_template, request, url_for

from billing.access import roles_required
from billing.admin import bp
from billing.admin.forms import ConfirmForm
from billing.exports.names import export_names, set_export_names
from billing.extensions import db
from billing.models import Role
from billing.services import ServiceError


@bp.route("/export-names", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def export_names_page():
    """One row per account: its Beancount and QuickBooks names (empty: the default shown)."""
    form = ConfirmForm()
    names = export_names()
    errors: dict[str, str] = {}
    values = {f"{kind}-{n.account_id}": getattr(n, kind) for n in names for kind in ("beancount", "quickbooks")}
    if form.validate_on_submit():
        values.update({key: request.form.get(key, "") for key in values})
        try:
            changed = set_export_names({n.account_id: (values[f"beancount-{n.account_id}"],
                                                       values[f"quickbooks-{n.account_id}"]) for n in names})
        except ServiceError as err:  # refused before anything was written
            errors[err.field or ""] = err.message
        else:
            db.session.commit()
            flash(f"Export names saved ({changed} account{'s' if changed != 1 else ''} changed)."
                  if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("admin.export_names_page"))
    status = 400 if errors else 200
    return render_template("admin/export_names.html", form=form, names=names, values=values, errors=errors), status
