from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, RadioField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length

from billing.forms import choices
from billing.models import DocumentRequestKind


class SignInForm(FlaskForm):
    email = EmailField("Your email", validators=[DataRequired("Enter your email."), Length(max=254)],
                       render_kw={"autocomplete": "email", "inputmode": "email", "autofocus": True})
    submit = SubmitField("Email me a sign-in link")


class ContinueForm(FlaskForm):
    """The button on the page an emailed link opens: the link is spent by this POST, not by opening it
    (mail scanners open links too)."""

    submit = SubmitField("Sign in")


class PeriodForm(FlaskForm):
    """A date range in the query string of a statement or superbill download."""

    class Meta:
        csrf = False

    start = DateField("From", validators=[InputRequired("Enter the first date.")])
    end = DateField("To", validators=[InputRequired("Enter the last date.")])


class DocumentRequestForm(FlaskForm):
    kind = RadioField("Which document", choices=choices([
        (DocumentRequestKind.STATEMENT.value, "Statement: what was charged and paid"),
        (DocumentRequestKind.SUPERBILL.value, "Superbill: to claim from your insurance"),
    ]), default=DocumentRequestKind.STATEMENT.value, validators=[InputRequired("Choose a document.")])
    start = DateField("From", validators=[InputRequired("Enter the first date.")])
    end = DateField("To", validators=[InputRequired("Enter the last date.")])
    submit = SubmitField("Get the document")


class InviteForm(FlaskForm):
    """The front desk invites a patient to the portal (or again, at a new address)."""

    email = EmailField("Portal email", validators=[DataRequired("Enter the patient's email."), Length(max=254)])
    submit = SubmitField("Invite to the portal")
