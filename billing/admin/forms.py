from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from billing.models import Role

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
