"""Registering, editing, archiving and finding patients."""

import re
from datetime import date
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Patient
from billing.models.patients import search_key
from billing.services import ServiceError, audit
from billing.services.numbering import next_value

FIELDS = ("first_name", "last_name", "date_of_birth", "email", "phone", "address_line1", "address_line2",
          "city", "state", "postal_code")
SEARCH_LIMIT = 50


def _validate(values: dict[str, Any], today: date) -> dict[str, Any]:
    clean = {k: values.get(k) for k in FIELDS}
    for key in FIELDS:
        if isinstance(clean[key], str):
            clean[key] = clean[key].strip()
        elif clean[key] is None and key != "date_of_birth":
            clean[key] = ""
    if not clean["first_name"]:
        raise ServiceError("Enter the patient's first name.", "first_name")
    if not clean["last_name"]:
        raise ServiceError("Enter the patient's last name.", "last_name")
    dob = clean["date_of_birth"]
    if not isinstance(dob, date):
        raise ServiceError("Enter the date of birth.", "date_of_birth")
    if dob > today or dob.year < 1900:
        raise ServiceError("The date of birth must be a real past date.", "date_of_birth")
    clean["email"] = clean["email"].lower()
    clean["state"] = clean["state"].upper()
    return clean


def create_patient(values: dict[str, Any], *, today: date) -> Patient:
    """Register a patient with a new account number and audit it. Raises ServiceError for missing
    names or an impossible date of birth."""
    clean = _validate(values, today)
    patient = Patient(**clean, account_number=f"P{next_value('patient'):06d}",
                      search_name=search_key(clean["last_name"], clean["first_name"]))
    db.session.add(patient)
    audit.record("patient.create", patient, changes={"account_number": patient.account_number})
    return patient


def update_patient(patient: Patient, values: dict[str, Any], *, today: date) -> None:
    """Save edited demographics; audits what changed. Raises ServiceError like create_patient."""
    clean = _validate(values, today)
    for key, value in clean.items():
        setattr(patient, key, value)
    patient.search_name = search_key(patient.last_name, patient.first_name)
    changes = audit.changes_of(patient)
    changes.pop("search_name", None)
    if changes:
        audit.record("patient.update", patient, changes=changes)


def set_archived(patient: Patient, archived: bool) -> None:
    patient.archived = archived
    audit.record("patient.archive" if archived else "patient.unarchive", patient)


_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$|^(\d{4})-(\d{2})-(\d{2})$")


def search(text: str, *, include_archived: bool = False, limit: int = SEARCH_LIMIT) -> list[Patient]:
    """Patients matching an account number, a date of birth (MM/DD/YYYY or YYYY-MM-DD), or a name:
    "smith", "smith jo", "jo smith" or "smith, jo" (prefixes, any case)."""
    text = " ".join(text.replace(",", " ").split())
    if not text:
        return []
    query = sa.select(Patient)
    if not include_archived:
        query = query.where(Patient.archived.is_(False))
    if (m := _DATE.match(text)):
        try:
            dob = date(int(m[3]), int(m[1]), int(m[2])) if m[3] else date(int(m[4]), int(m[5]), int(m[6]))
        except ValueError:
            return []
        query = query.where(Patient.date_of_birth == dob)
    elif re.fullmatch(r"[Pp]?\d{3,}", text):
        digits = text.lstrip("Pp")
        query = query.where(Patient.account_number == f"P{int(digits):06d}")
    else:
        words = text.lower().split()
        condition = _starts_with(Patient.search_name, " ".join(words))
        if len(words) == 2:  # "first last" typed the other way round
            condition = condition | _starts_with(Patient.search_name, f"{words[1]} {words[0]}")
        query = query.where(condition)
    return list(db.session.scalars(query.order_by(Patient.search_name, Patient.id).limit(limit)))


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """A prefix match that the column's index serves: LIKE on PostgreSQL (text_pattern_ops),
    a range on SQLite (whose LIKE optimisation does not apply to an escaped pattern)."""
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.and_(column >= prefix, column < prefix + "\U0010ffff")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"{escaped}%", escape="\\")
