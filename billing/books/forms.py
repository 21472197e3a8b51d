from flask_wtf.file import FileField, FileRequired
from wtforms import SubmitField

from billing.forms import OneTimeForm


class StripeReportForm(OneTimeForm):
    report = FileField("Itemized payout reconciliation report (CSV)",
                       validators=[FileRequired("Choose the CSV file downloaded from Stripe.")])
    submit = SubmitField("Import payouts")
