import re
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField, EmailField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField, SubmitField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, Regexp, StopValidation
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from billing.forms import MoneyField
from billing.models import Role, ServiceCategory
from billing.services.catalog import PACKAGE_UNITS, PLAN_MONTHS, SERVICE_CATEGORIES

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in Role]
US_TIMEZONES = sorted(tz for tz in available_timezones() if tz.startswith(("America/", "Pacific/Honolulu", "US/")))


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired("Enter the person's name."), Length(max=120)])
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validate_choice=True)
    submit = SubmitField("Save")


class NewUserForm(UserForm):
    email = EmailField("Email", validators=[DataRequired("Enter an email."), Email("Enter a valid email."),
                                            Length(max=254)])
    password = PasswordField("First password", validators=[DataRequired("Choose a first password.")],
                             description="At least 12 characters. Give it to the person; they can change it.",
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Create user")


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField("New password", validators=[DataRequired("Choose a new password.")],
                                 render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Reset password")


class ConfirmForm(FlaskForm):
    """A button that only carries the CSRF token."""

    submit = SubmitField("Confirm")


class SettingsForm(FlaskForm):
    name = StringField("Clinic name", validators=[DataRequired("Enter the clinic's name."), Length(max=200)])
    address_line1 = StringField("Address", validators=[Length(max=200)])
    address_line2 = StringField("Address line 2", validators=[Optional(), Length(max=200)])
    city = StringField("City", validators=[Length(max=100)])
    state = StringField("State", validators=[Optional(), Regexp(r"^[A-Za-z]{2}$", message="Two letters, like NY.")],
                        filters=[lambda s: s.upper() if s else s])
    postal_code = StringField("ZIP code", validators=[Optional(), Regexp(r"^\d{5}(-\d{4})?$",
                                                                         message="Five digits, like 10001.")])
    phone = StringField("Phone", validators=[Length(max=30)])
    email = EmailField("Email", validators=[Optional(), Email("Enter a valid email."), Length(max=254)])
    tin = StringField("Tax ID (TIN/EIN)", validators=[Length(max=10)], description="Nine digits, like 12-3456789.")
    npi = StringField("NPI", validators=[Length(max=10)], description="The clinic's 10-digit National Provider Identifier.")
    timezone = SelectField("Timezone", choices=[SelectChoice(tz, tz) for tz in US_TIMEZONES])
    invoice_prefix = StringField("Invoice number prefix", validators=[DataRequired(), Length(max=10)])
    receipt_prefix = StringField("Receipt number prefix", validators=[DataRequired(), Length(max=10)])
    submit = SubmitField("Save settings")


class LogoForm(FlaskForm):
    logo = FileField("Logo (PNG, JPEG or GIF)", validators=[FileRequired("Choose an image file.")])
    submit = SubmitField("Upload logo")


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = StringField("Who (email)", validators=[Optional()])
    action = StringField("Action", validators=[Optional()])
    entity_type = StringField("Record type", validators=[Optional()])
    entity_id = StringField("Record id", validators=[Optional()])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])


# --- the fee schedule ---------------------------------------------------------------------------

_PERCENT = re.compile(r"^(\d{1,3})(?:\.(\d{0,2}))?$", re.ASCII)
MSG_PERCENT = "Enter the fee as a percentage with at most two decimals, like 9.90."


def parse_percent_bps(text: str) -> int:
    """A percentage as typed ("9.90", "9.9 %", "12") in basis points (990), from the digits alone."""
    match = _PERCENT.match(text.strip().removesuffix("%").strip())
    if not match:
        raise ValueError(MSG_PERCENT)
    whole, fraction = match.group(1), match.group(2) or ""
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def format_bps(bps: int) -> str:
    """Basis points as a percentage without the sign: 990 -> "9.90"."""
    whole, rest = divmod(bps, 100)
    return f"{whole}.{rest:02d}"


class PercentField(StringField):
    """A text input for a percentage; its ``.data`` is an int number of basis points (or None when empty)."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = (valuelist[0] or "").strip()
        if not raw:
            self.data = None
            return
        try:
            self.data = parse_percent_bps(raw)
        except ValueError:
            self.data = None
            raise

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return format_bps(self.data) if isinstance(self.data, int) else ""


CODE_HINT = ("Capital letters, digits and hyphens, like KET-INF. "
             "It cannot change later: the journal and exports use it.")
SERVICE_CATEGORY_CHOICES = [SelectChoice(c.value, c.label) for c in SERVICE_CATEGORIES]


class ServiceForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the service's name."), Length(max=120)])
    cpt_code = StringField("CPT/HCPCS code", validators=[Length(max=10)],
                           description="5 digits (CPT, like 99214) or a letter and 4 digits (HCPCS, like J3490). "
                                       "Leave empty for an unbilled item such as a free consultation.",
                           filters=[lambda s: s.strip().upper() if s else s])
    category = SelectField("Category", choices=SERVICE_CATEGORY_CHOICES, coerce=ServiceCategory,
                           description="Revenue is reported by category.")
    price = MoneyField("Price", validators=[InputRequired("Enter the price, like 450.00 (0.00 for free).")],
                       description="Per unit, in dollars. 0.00 for a free service.")
    unit = StringField("Unit", default="visit", validators=[DataRequired("Enter the unit the price is for."),
                                                            Length(max=20)],
                       description="What one unit is: visit, hour, 10 mg…")
    ndc = StringField("NDC (drugs only)", validators=[Length(max=20)],
                      description="The National Drug Code on the vial, like 0409-4755-03; printed on superbills.")
    submit = SubmitField("Save service")


class NewServiceForm(ServiceForm):
    code = StringField("Internal code", validators=[DataRequired("Enter a short code, like KET-INF."), Length(max=20)],
                       description=CODE_HINT, filters=[lambda s: s.strip().upper() if s else s])
    submit = SubmitField("Add service")


class PackageForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the package's name."), Length(max=120)])
    # The catalog service checks the choice, with a message that says what is wrong with it.
    service = SelectField("Service drawn down", coerce=int, validate_choice=False,
                          validators=[InputRequired("Choose the service the package draws down.")])
    units = IntegerField("Units", validators=[InputRequired("Enter the number of units."),
                                              NumberRange(PACKAGE_UNITS[0], PACKAGE_UNITS[1],
                                                          f"A package has between {PACKAGE_UNITS[0]} and "
                                                          f"{PACKAGE_UNITS[1]} units.")])
    price = MoneyField("Package price", allow_zero=False,
                       validators=[InputRequired("Enter the package price, like 2,400.00.")],
                       description="For all the units together.")
    submit = SubmitField("Save package")


class NewPackageForm(PackageForm):
    code = StringField("Internal code", validators=[DataRequired("Enter a short code, like SERIES-6."),
                                                    Length(max=20)],
                       description=CODE_HINT.replace("KET-INF", "SERIES-6"),
                       filters=[lambda s: s.strip().upper() if s else s])
    submit = SubmitField("Add package")


class ProviderForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the provider's name."), Length(max=120)])
    credentials = StringField("Credentials", validators=[Length(max=40)], description="MD, DO, CRNA, NP…")
    npi = StringField("NPI", validators=[Length(max=12)],
                      description="The provider's own 10-digit NPI. Superbills need it.",
                      render_kw={"inputmode": "numeric"})
    submit = SubmitField("Save provider")


class PlanForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the plan's name, like 12 months no interest."),
                                           Length(max=120)])
    months = IntegerField("Months", validators=[InputRequired("Enter the number of months."),
                                                NumberRange(PLAN_MONTHS[0], PLAN_MONTHS[1],
                                                            f"Enter between {PLAN_MONTHS[0]} and "
                                                            f"{PLAN_MONTHS[1]} months.")])
    merchant_fee = PercentField("Merchant fee (%)",
                                validators=[InputRequired("Enter the merchant fee, like 9.90.")],
                                description="The share CareCredit keeps from what it funds, like 9.90.")
    submit = SubmitField("Save plan")
