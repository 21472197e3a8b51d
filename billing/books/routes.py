from flask import flash, render_template, request, url_for

from billing.access import roles_required
from billing.books import bp
from billing.books.forms import StripeReportForm
from billing.models import Role
from billing.services import ServiceError, payouts
from billing.timeutil import clinic_today
from billing.views import submit_once


@bp.route("/")
@roles_required(Role.BOOKKEEPER)
def home():
    return render_template("books/home.html", today=clinic_today())


@bp.route("/stripe-import", methods=["GET", "POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def stripe_import():
    """Import Stripe's itemized payout reconciliation CSV; the payouts just imported, then the recent ones."""
    form = StripeReportForm()
    if form.validate_on_submit():
        def import_report() -> str:
            try:
                text = form.report.data.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ServiceError("This is not a text CSV file. Download the report from Stripe again and "
                                   "choose that file.", "report") from None
            result = payouts.import_reconciliation_csv(text)
            flash(result.message(), "success" if result.posted else "info")
            ids = ",".join(str(p.id) for p in result.posted + result.already_posted)
            return url_for("books.stripe_import", imported=ids)

        if (response := submit_once(form, import_report)) is not None:
            return response
    imported_ids = [int(i) for i in request.args.get("imported", "").split(",") if i.isdigit()]
    return render_template("books/stripe_import.html", form=form,
                           imported=payouts.summaries(ids=imported_ids) if imported_ids else [],
                           recent=payouts.summaries())
