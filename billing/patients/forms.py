from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, IntegerField, SelectField, StringField, SubmitField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, Regexp

from billing.forms import MoneyField, OneTimeForm


class PatientForm(FlaskForm):
    first_name = StringField("First name", validators=[DataRequired("Enter the first name."), Length(max=80)],
                             render_kw={"autocomplete": "off"})
    last_name = StringField("Last name", validators=[DataRequired("Enter the last name."), Length(max=80)],
                            render_kw={"autocomplete": "off"})
    date_of_birth = DateField("Date of birth", validators=[InputRequired("Enter the date of birth.")])
    email = EmailField("Email", validators=[Optional(), Email("Enter a valid email, like name@example.com."),
                                            Length(max=254)])
    phone = StringField("Phone", validators=[Optional(), Length(max=30)])
    address_line1 = StringField("Address", validators=[Optional(), Length(max=200)])
    address_line2 = StringField("Address line 2", validators=[Optional(), Length(max=200)])
    city = StringField("City", validators=[Optional(), Length(max=100)])
    state = StringField("State", validators=[Optional(), Regexp(r"^[A-Za-z]{2}$", message="Two letters, like NY.")])
    postal_code = StringField("ZIP code", validators=[Optional(), Regexp(r"^\d{5}(-\d{4})?$",
                                                                         message="Five digits, like 10001.")])
    submit = SubmitField("Save patient")


class ChargeForm(OneTimeForm):
    service = SelectField("Service", coerce=int, validators=[InputRequired("Choose a service."),
                                                             NumberRange(min=1, message="Choose a service.")])
    date_of_service = DateField("Date of service", validators=[InputRequired("Enter the date of service.")])
    units = IntegerField("Units", default=1, validators=[InputRequired("Enter the units."),
                                                          NumberRange(1, 24, "Between 1 and 24.")])
    unit_price = MoneyField("Price per unit", validators=[Optional()],
                            description="Leave empty for the fee-schedule price.")
    price_reason = StringField("Reason for a different price", validators=[Optional(), Length(max=200)])
    discount = MoneyField("Discount", validators=[Optional()])
    icd10_codes = StringField("Diagnosis codes (ICD-10)", validators=[Optional(), Length(max=100)],
                              description="Separate with spaces or commas, like F33.2 G90.51.")
    provider = SelectField("Rendering provider", coerce=int, validators=[Optional()])
    infusion_start = TimeField("Infusion start", validators=[Optional()])
    infusion_stop = TimeField("Infusion stop", validators=[Optional()])
    use_package = BooleanField("Draw from the patient's prepaid package (no charge)")
    submit = SubmitField("Add charge")


class PackageSaleForm(OneTimeForm):
    package = SelectField("Package", coerce=int, validators=[InputRequired("Choose a package.")])
    submit = SubmitField("Sell package")


class ReasonForm(OneTimeForm):
    reason = TextAreaField("Reason", validators=[DataRequired("Say why."), Length(max=200)])
    submit = SubmitField("Confirm")


class PackageRefundForm(OneTimeForm):
    units = IntegerField("Unused units to refund", validators=[InputRequired("Enter the units."),
                                                               NumberRange(1, 100, "Enter a number of units.")])
    reason = StringField("Reason", validators=[DataRequired("Say why."), Length(max=200)])
    submit = SubmitField("Refund units as credit")


class IssueInvoiceForm(OneTimeForm):
    submit = SubmitField("Issue invoice")


class SuperbillForm(FlaskForm):
    """The superbill's dates of service, sent as a GET query (a download changes nothing)."""

    class Meta:
        csrf = False

    start = DateField("From", validators=[InputRequired("Enter the first date of service.")])
    end = DateField("To", validators=[InputRequired("Enter the last date of service.")])
    submit = SubmitField("Download superbill")


class StatementEmailForm(FlaskForm):
    """The statement period, posted by the statement form's "Email statement" button."""

    start = DateField("From", validators=[InputRequired("Enter the start date of the statement.")])
    end = DateField("To", validators=[InputRequired("Enter the end date of the statement.")])
