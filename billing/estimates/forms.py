from wtforms import DateField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from billing.forms import OneTimeForm, choices
from billing.models import Service
from billing.services.estimates import GIVEN_HOW, MAX_QUANTITY


class EstimateForm(OneTimeForm):
    period_start = DateField("Period starts", validators=[InputRequired("Enter the first day of the period.")])
    period_end = DateField("Period ends", validators=[InputRequired("Enter the last day of the period.")],
                           description="One visit: the same day. A series: up to 12 months.")
    provider = SelectField("Rendering provider", coerce=int, validators=[Optional()])
    icd10_codes = StringField("Diagnosis codes (ICD-10), if known", validators=[Optional(), Length(max=100)],
                              description="Separate with spaces or commas, like F33.2 G90.51.")
    reason = StringField("Reason for care", validators=[Optional(), Length(max=200)],
                         description="Printed on the estimate, e.g. ketamine infusion series for depression.")
    submit = SubmitField("Create estimate")

    def quantity_fields(self) -> list[tuple[int, IntegerField]]:
        """(service id, quantity field) for every service on the form, in fee-schedule order."""
        return [(int(name.removeprefix("qty_")), field) for name, field in self._fields.items()
                if name.startswith("qty_")]


def estimate_form(services: list[Service]) -> EstimateForm:
    """The estimate form with a quantity box for each service of the fee schedule."""

    class Form(EstimateForm):
        pass

    for service in services:
        setattr(Form, f"qty_{service.id}", IntegerField(
            service.name, validators=[Optional(), NumberRange(0, MAX_QUANTITY, f"Between 0 and {MAX_QUANTITY}.")]))
    return Form()


class GivenForm(OneTimeForm):
    how = SelectField("How it was given", choices=choices((h, h.capitalize()) for h in GIVEN_HOW),
                      validators=[InputRequired("Say how it was given.")])
    submit = SubmitField("Record as given")

