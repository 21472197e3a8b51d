from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from billing.forms import MoneyField, OneTimeForm, choices
from billing.models import AdjustmentKind


class AdjustForm(OneTimeForm):
    kind = SelectField("Kind", choices=choices((k.value, k.label) for k in AdjustmentKind),
                       validators=[InputRequired()])
    amount = MoneyField("Amount", allow_zero=False, validators=[InputRequired("Enter the amount.")])
    reason = StringField("Reason", validators=[DataRequired("Say why."), Length(max=200)])
    submit = SubmitField("Post adjustment")


class ApplyCreditForm(OneTimeForm):
    amount = MoneyField("Amount of credit to apply", allow_zero=False, validators=[Optional()],
                        description="Leave empty to apply as much as fits.")
    submit = SubmitField("Apply credit")
