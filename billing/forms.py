"""Form pieces shared by the blueprints: the money field, one-time forms and service errors."""

from __future__ import annotations

import secrets

from flask import flash
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, StopValidation

from billing.money import Money, MoneyError, parse_money
from billing.services import ServiceError


class MoneyField(StringField):
    """A text input whose ``.data`` is a Money (or None when left empty)."""

    def __init__(
        self,
        label=None,
        validators=None,
        *,
        allow_negative: bool = False,
        allow_zero: bool = True,
        **kwargs,
    ):
        """Like StringField, plus the sign and zero rules passed to parse_money."""
        super().__init__(label, validators, **kwargs)
        self.allow_negative = allow_negative
        self.allow_zero = allow_zero

    def process_formdata(self, valuelist):
        """Parse the submitted text; a MoneyError message becomes the field error."""
        if not valuelist:
            return
        raw = valuelist[0]
        if raw is None or not str(raw).strip():
            self.data = None
            return
        try:
            self.data = parse_money(
                raw, allow_negative=self.allow_negative, allow_zero=self.allow_zero
            )
        except MoneyError as err:
            self.data = None
            raise ValueError(str(err)) from err

    def pre_validate(self, form):
        """Skip the other validators when the text could not be parsed (one error, not two)."""
        if self.process_errors:
            raise StopValidation()

    def _value(self):
        """Redisplay what was typed, or the amount as plain "1250.50"."""
        if self.raw_data:
            return self.raw_data[0]
        return self.data.plain() if isinstance(self.data, Money) else ""


def apply_service_error(form: FlaskForm, err: ServiceError) -> None:
    """Show a service's refusal next to the field it names, in a group's error slot (a form lists
    those in `error_slots`, e.g. a fieldset of checkboxes), or at the top of the page."""
    field = getattr(form, err.field, None) if err.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, err.message]
    elif err.field in getattr(form, "error_slots", ()):
        form.slot_errors = {**getattr(form, "slot_errors", {}), err.field: err.message}
    else:
        flash(err.message, "error")


class OneTimeForm(FlaskForm):
    """A form that must act at most once: its token is spent with the work it does
    (see billing.services.submissions)."""

    form_token = HiddenField(default=lambda: secrets.token_urlsafe(24),
                             validators=[DataRequired(), Length(min=16, max=64)])


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]
