"""The front desk's check-out through the real routes: register, charge, invoice, pay, receipt."""

import re

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Charge, FormSubmission, Invoice, InvoiceStatus, Patient, Payment, Role
from billing.money import Money
from billing.services import balances
from billing.timeutil import clinic_today


def _token(html: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)


def _register(client) -> Patient:
    response = client.post("/patients/new", data={"first_name": "Avery", "last_name": "Quinn",
                                                  "date_of_birth": "1984-02-29", "email": "avery@example.com"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return db.session.scalars(sa.select(Patient).where(Patient.last_name == "Quinn")).one()


def _charge(client, patient, service, **extra):
    page = client.get(f"/patients/{patient.id}/checkout").get_data(as_text=True)
    data = {"form_token": _token(page), "service": service.id, "date_of_service": clinic_today().isoformat(),
            "units": 1, "provider": 0, **extra}
    return client.post(f"/patients/{patient.id}/checkout", data=data)


def test_checkout_half_money_order_half_carecredit(login, catalog):
    client, _ = login(Role.FRONTDESK)
    patient = _register(client)
    assert _charge(client, patient, catalog["infusion"], icd10_codes="F33.2").status_code == 302
    page = client.get(f"/patients/{patient.id}/checkout").get_data(as_text=True)
    assert "$450.00" in page and "Ketamine infusion" in page

    response = client.post(f"/patients/{patient.id}/invoice", data={"form_token": _token(page)})
    invoice = db.session.scalars(sa.select(Invoice).where(Invoice.patient_id == patient.id)).one()
    assert response.location.endswith(f"/payments/new/{patient.id}/money_order?invoice={invoice.id}")

    pay_page = client.get(response.location).get_data(as_text=True)
    assert 'value="450.00"' in pay_page
    response = client.post(response.location, data={
        "form_token": _token(pay_page), "amount": "225.00", "received_date": clinic_today().isoformat(),
        "apply_to": invoice.id, "issuer": "usps", "serial": "2734 5591 02", "purchaser": "Avery Quinn",
        "id_seen": "y", "signed_in_front_of_staff": "y", "security_features_checked": "y"})
    assert response.status_code == 302
    receipt = client.get(response.location).get_data(as_text=True)
    assert "USPS serial ending 9102" in receipt and "$225.00" in receipt

    cc_url = f"/payments/new/{patient.id}/carecredit?invoice={invoice.id}"
    cc_page = client.get(cc_url).get_data(as_text=True)
    assert 'value="225.00"' in cc_page
    response = client.post(cc_url, data={
        "form_token": _token(cc_page), "amount": "225", "received_date": clinic_today().isoformat(),
        "apply_to": invoice.id, "authorization_code": "a7k2p9", "plan": catalog["12mo"].id,
        "account_last4": "4321", "id_checked": "y", "receipt_signed": "y"})
    assert response.status_code == 302
    receipt = client.get(response.location).get_data(as_text=True)
    assert "authorization A7K2P9" in receipt and "account ending 4321" in receipt
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.PAID
    assert balances.patient_summary(patient).balance == Money.zero()


def test_duplicate_money_order_serial_is_refused_next_to_the_field(login, make_patient, invoice_for, pay_mo):
    client, _ = login(Role.FRONTDESK)
    patient = make_patient()
    invoice_for(patient)
    pay_mo(patient, "100", serial="99887766")
    db.session.commit()
    url = f"/payments/new/{patient.id}/money_order"
    page = client.get(url).get_data(as_text=True)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Payment))
    response = client.post(url, data={
        "form_token": _token(page), "amount": "100", "received_date": clinic_today().isoformat(), "apply_to": 0,
        "issuer": "usps", "serial": "99887766", "purchaser": "Sam", "id_seen": "y",
        "signed_in_front_of_staff": "y", "security_features_checked": "y"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="serial-help" class="field-error">USPS money order 99887766 was already recorded', html)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == before


def test_overpayment_asks_for_confirmation_then_keeps_credit(login, make_patient, invoice_for):
    client, _ = login(Role.FRONTDESK)
    patient = make_patient()
    invoice_for(patient)
    db.session.commit()
    url = f"/payments/new/{patient.id}/money_order"
    data = {"amount": "500", "received_date": clinic_today().isoformat(), "apply_to": 0, "issuer": "moneygram",
            "serial": "55501234", "purchaser": "Sam", "id_seen": "y", "signed_in_front_of_staff": "y",
            "security_features_checked": "y"}
    page = client.get(url).get_data(as_text=True)
    html = client.post(url, data={**data, "form_token": _token(page)}).get_data(as_text=True)
    assert "This is $50.00 more than what is applied to invoices" in html
    assert balances.patient_credit(patient.id) == Money.zero()
    response = client.post(url, data={**data, "form_token": _token(html), "confirm_overpayment": "y"})
    assert response.status_code == 302
    assert balances.patient_credit(patient.id) == Money.parse("50")


def test_a_second_submit_of_the_same_form_records_nothing_twice(login, catalog, make_patient):
    client, _ = login(Role.FRONTDESK)
    patient = make_patient()
    db.session.commit()
    page = client.get(f"/patients/{patient.id}/checkout").get_data(as_text=True)
    data = {"form_token": _token(page), "service": catalog["infusion"].id,
            "date_of_service": clinic_today().isoformat(), "units": 1, "provider": 0}
    first = client.post(f"/patients/{patient.id}/checkout", data=data)
    second = client.post(f"/patients/{patient.id}/checkout", data=data)
    assert first.status_code == second.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Charge).where(Charge.patient_id == patient.id)) == 1
    assert "already sent" in client.get(second.location).get_data(as_text=True)
    assert db.session.get(FormSubmission, data["form_token"]) is not None


def test_refund_from_the_receipt(login, make_patient, invoice_for, pay_mo):
    client, _ = login(Role.FRONTDESK)
    patient = make_patient()
    invoice_for(patient)
    payment = pay_mo(patient, "500", confirm=True)
    db.session.commit()
    page = client.get(f"/payments/{payment.id}/refund").get_data(as_text=True)
    assert 'value="50.00"' in page  # the credit is offered first
    response = client.post(f"/payments/{payment.id}/refund", data={
        "form_token": _token(page), "amount": "50.00", "reason": "Overpaid", "check_number": "1042"})
    assert response.status_code == 302
    receipt = client.get(response.location).get_data(as_text=True)
    assert "Refunded" in receipt and "by check 1042" in receipt
    assert balances.patient_credit(patient.id) == Money.zero()


def test_bookkeeper_sees_amounts_but_not_diagnoses(login, make_patient, charge):
    patient = make_patient()
    charge(patient, icd10_codes=["F33.2"])
    db.session.commit()
    frontdesk, _ = login(Role.FRONTDESK)
    bookkeeper, _ = login(Role.BOOKKEEPER)
    assert "F33.2" in frontdesk.get(f"/patients/{patient.id}").get_data(as_text=True)
    page = bookkeeper.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "$450.00" in page and "F33.2" not in page


def test_search_finds_by_name_dob_and_account(login, make_patient):
    client, _ = login(Role.FRONTDESK)
    patient = make_patient(last="Okafor", first="Chidi")
    db.session.commit()
    for q in ("okaf", "chidi okafor", "05/17/1980", patient.account_number):
        assert patient.account_number in client.get("/patients/", query_string={"q": q}).get_data(as_text=True), q
    assert "No patient matches" in client.get("/patients/", query_string={"q": "zzz"}).get_data(as_text=True)
