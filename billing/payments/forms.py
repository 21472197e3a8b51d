from wtforms import BooleanField, DateField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from billing.forms import MoneyField, OneTimeForm, choices
from billing.models import MoneyOrderIssuer


class AmountForm(OneTimeForm):
    """How much, and on which of the patient's open invoices (0: oldest first)."""
    amount = MoneyField("Amount", allow_zero=False, validators=[InputRequired("Enter the amount.")])
    apply_to = SelectField("Apply to", coerce=int, validators=[Optional()],
                           description="Oldest invoices first, unless you choose one.")


class PaymentForm(AmountForm):
    error_slots = ("verification",)
    received_date = DateField("Received on", validators=[InputRequired("Enter the date.")])
    confirm_overpayment = BooleanField("Keep what is more than the balance as the patient's credit")
    submit = SubmitField("Record payment")


class MoneyOrderForm(PaymentForm):
    issuer = SelectField("Issuer", choices=choices((i.value, i.label) for i in MoneyOrderIssuer),
                         validators=[InputRequired("Choose the issuer.")])
    serial = StringField("Serial number", validators=[DataRequired("Enter the serial number."), Length(max=30)],
                         render_kw={"autocomplete": "off", "inputmode": "numeric"})
    purchaser = StringField("Purchaser (as written)", validators=[DataRequired("Enter the purchaser's name."),
                                                                  Length(max=120)])
    id_seen = BooleanField("I saw the payer's photo ID")
    signed_in_front_of_staff = BooleanField("It was signed in front of me")
    security_features_checked = BooleanField("I checked the watermark and security thread")
    submit = SubmitField("Record money order")


class CareCreditForm(PaymentForm):
    authorization_code = StringField("Authorization code", validators=[DataRequired("Enter the authorization code."),
                                                                      Length(max=20)],
                                     render_kw={"autocomplete": "off"})
    plan = SelectField("Promotional plan", coerce=int, validators=[InputRequired("Choose the plan.")])
    account_last4 = StringField("Last 4 digits of the CareCredit account",
                                validators=[DataRequired("Enter the last 4 digits."), Length(max=4)],
                                render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 4})
    id_checked = BooleanField("I checked the cardholder's photo ID")
    receipt_signed = BooleanField("The cardholder signed the CareCredit receipt")
    submit = SubmitField("Record CareCredit payment")


class CardForm(AmountForm):
    """The card tab: the card itself is typed into Stripe's Payment Element on the next page."""
    submit = SubmitField("Continue to card")


class TryAnotherCardForm(OneTimeForm):
    submit = SubmitField("Try another card")


class RefundForm(OneTimeForm):
    amount = MoneyField("Amount to refund", allow_zero=False, validators=[InputRequired("Enter the amount.")])
    reason = StringField("Reason", validators=[DataRequired("Say why."), Length(max=200)])
    check_number = StringField("Clinic check number", validators=[Optional(), Length(max=20)])
    return_reference = StringField("CareCredit return reference", validators=[Optional(), Length(max=40)])
    submit = SubmitField("Refund")


class ReturnForm(OneTimeForm):
    reason = StringField("What happened", validators=[DataRequired("Say why it came back."), Length(max=200)],
                         description="For example: returned by the bank as counterfeit, or stopped.")
    submit = SubmitField("Record the return")
