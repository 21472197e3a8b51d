"""Registering, editing, archiving and finding patients."""

from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, Patient
from billing.services import patients as patient_service
from tests.services.conftest import TODAY, refused


def register(first="Sam", last="Rivera", dob=date(1980, 5, 17), **extra) -> Patient:
    return patient_service.create_patient({"first_name": first, "last_name": last, "date_of_birth": dob, **extra},
                                          today=TODAY)


def audit_actions(patient: Patient) -> list[str]:
    return list(db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.entity_type == "Patient", AuditEvent.entity_id == str(patient.id))
        .order_by(AuditEvent.id)
    ))


# --- create ------------------------------------------------------------------------------------


def test_create_cleans_the_values_numbers_the_account_and_audits(app):
    patient = register("  Sam ", " Rivera  ", email=" Sam.Rivera@Example.COM ", state="ny", phone=" 555-0100 ",
                       city=None)
    db.session.flush()

    assert (patient.first_name, patient.last_name) == ("Sam", "Rivera")
    assert patient.search_name == "rivera sam"
    assert patient.email == "sam.rivera@example.com"
    assert (patient.state, patient.phone, patient.city) == ("NY", "555-0100", "")
    assert patient.account_number == "P000001"
    assert patient.archived is False
    assert audit_actions(patient) == ["patient.create"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "patient.create"))
    assert event.changes == {"account_number": "P000001"}
    assert register("Ana", "Lopez").account_number == "P000002"


def test_create_ignores_unknown_fields(app):
    patient = register(archived=True, account_number="P999999", id=4242)
    db.session.flush()
    assert patient.archived is False
    assert patient.account_number == "P000001"
    assert patient.id != 4242


@pytest.mark.parametrize(("values", "field"), [
    ({"first_name": "  "}, "first_name"),
    ({"first_name": None}, "first_name"),
    ({"last_name": ""}, "last_name"),
    ({"date_of_birth": None}, "date_of_birth"),
    ({"date_of_birth": "05/17/1980"}, "date_of_birth"),
    ({"date_of_birth": date(2026, 3, 17)}, "date_of_birth"),  # tomorrow
    ({"date_of_birth": date(1899, 12, 31)}, "date_of_birth"),
])
def test_create_refuses_missing_names_and_impossible_birth_dates(app, values, field):
    register()  # the counter exists: a refusal must not advance it
    with refused(field):
        patient_service.create_patient(
            {"first_name": "Sam", "last_name": "Rivera", "date_of_birth": date(1980, 5, 17)} | values, today=TODAY)
    assert register("Next", "Patient").account_number == "P000002"


def test_born_today_is_accepted(app):
    assert register(dob=TODAY).date_of_birth == TODAY


# --- update and archive ---------------------------------------------------------------------------


def test_update_saves_changes_reindexes_the_name_and_audits_only_what_changed(app):
    patient = register()
    db.session.flush()
    values = {"first_name": "Samantha", "last_name": "Rivera-Cole", "date_of_birth": date(1980, 5, 17),
              "email": "SAM@EXAMPLE.COM"}
    patient_service.update_patient(patient, values, today=TODAY)
    db.session.flush()

    assert patient.search_name == "rivera-cole samantha"
    assert patient.email == "sam@example.com"
    assert audit_actions(patient) == ["patient.create", "patient.update"]
    changes = db.session.scalar(sa.select(AuditEvent.changes).where(AuditEvent.action == "patient.update"))
    assert changes == {"first_name": ["Sam", "Samantha"], "last_name": ["Rivera", "Rivera-Cole"],
                       "email": ["", "sam@example.com"]}
    assert patient_service.search("rivera-cole sam") == [patient]

    patient_service.update_patient(patient, values, today=TODAY)  # nothing changed: no audit row
    assert audit_actions(patient) == ["patient.create", "patient.update"]


def test_update_refused_leaves_the_patient_as_it_was(app):
    patient = register()
    db.session.flush()
    with refused("last_name"):
        patient_service.update_patient(
            patient, {"first_name": "Changed", "last_name": " ", "date_of_birth": date(1980, 5, 17)}, today=TODAY)
    assert patient.first_name == "Sam"
    with refused("date_of_birth"):
        patient_service.update_patient(
            patient, {"first_name": "Changed", "last_name": "X", "date_of_birth": date(2030, 1, 1)}, today=TODAY)
    assert (patient.first_name, patient.last_name) == ("Sam", "Rivera")


def test_archive_and_restore_are_audited(app):
    patient = register()
    patient_service.set_archived(patient, True)
    assert patient.archived is True
    patient_service.set_archived(patient, False)
    assert patient.archived is False
    assert audit_actions(patient) == ["patient.create", "patient.archive", "patient.unarchive"]


# --- search -----------------------------------------------------------------------------------------


@pytest.fixture
def people(app):
    names = [("Sam", "Rivera", date(1980, 5, 17)), ("Samuel", "Rivers", date(1975, 1, 2)),
             ("Ana", "Rivera", date(1990, 12, 1)), ("Jo", "Smith", date(1980, 5, 17)),
             ("John", "Smithers", date(2001, 7, 4)), ("Pat", "O'Neil_100%", date(1966, 6, 6))]
    made = {f"{first} {last}": register(first, last, dob) for first, last, dob in names}
    db.session.flush()
    return made


def names(patients: list[Patient]) -> list[str]:
    return [p.full_name for p in patients]


@pytest.mark.parametrize(("text", "expected"), [
    ("rivera", ["Ana Rivera", "Sam Rivera"]),
    ("RIV", ["Ana Rivera", "Sam Rivera", "Samuel Rivers"]),
    ("rivera sam", ["Sam Rivera"]),
    ("rivera, sa", ["Sam Rivera"]),
    ("sam rivera", ["Sam Rivera"]),
    ("Sam   Rivera", ["Sam Rivera"]),
    ("jo smith", ["Jo Smith"]),
    ("smith", ["Jo Smith", "John Smithers"]),
    ("smith jo", ["Jo Smith"]),
    ("smithers", ["John Smithers"]),
    ("sam", []),  # a first name alone is not a last-name prefix
    ("o'neil_100%", ["Pat O'Neil_100%"]),
    ("o'neil_", ["Pat O'Neil_100%"]),
    ("o'neil%", []),  # % and _ are literal, not wildcards
    ("rivera_", []),
    ("", []),
    ("   ", []),
])
def test_search_by_name_prefix_either_order(people, text, expected):
    assert names(patient_service.search(text)) == expected


@pytest.mark.parametrize("text", ["05/17/1980", "5/17/1980", "1980-05-17", " 05/17/1980 "])
def test_search_by_date_of_birth(people, text):
    assert names(patient_service.search(text)) == ["Sam Rivera", "Jo Smith"]


@pytest.mark.parametrize("text", ["02/30/1980", "13/01/1980", "1980-13-01"])
def test_search_by_an_impossible_date_finds_nobody(people, text):
    assert patient_service.search(text) == []


def test_search_by_account_number_with_or_without_the_p(people):
    ana = people["Ana Rivera"]
    assert ana.account_number == "P000003"
    for text in ("P000003", "p000003", "000003", "P003", "003", "P0000003"):
        assert patient_service.search(text) == [ana], text
    assert patient_service.search("P000999") == []


def test_search_with_a_short_number_uses_the_account_number_once_three_digits(people):
    ana = people["Ana Rivera"]
    assert patient_service.search("003") == [ana]
    assert patient_service.search("3") == []


def test_archived_patients_are_hidden_unless_asked_for(people):
    sam = people["Sam Rivera"]
    patient_service.set_archived(sam, True)
    db.session.flush()
    assert names(patient_service.search("rivera")) == ["Ana Rivera"]
    assert patient_service.search(sam.account_number) == []
    assert names(patient_service.search("05/17/1980")) == ["Jo Smith"]
    assert names(patient_service.search("rivera", include_archived=True)) == ["Ana Rivera", "Sam Rivera"]
    assert patient_service.search(sam.account_number, include_archived=True) == [sam]


def test_search_limit(app):
    for i in range(5):
        register(f"First{i}", "Nguyen")
    db.session.flush()
    assert len(patient_service.search("nguyen")) == 5
    assert len(patient_service.search("nguyen", limit=3)) == 3
