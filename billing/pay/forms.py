from wtforms import SubmitField

from billing.forms import OneTimeForm


class PayForm(OneTimeForm):
    submit = SubmitField("Pay by card")
