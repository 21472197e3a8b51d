"""The month close through the real routes: the bookkeeper sees what blocks last month and closes it
(with a reason while something is unsettled), the admin reopens it with a reason, the desk is refused."""

import re
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AccountingPeriod, AuditEvent, PeriodStatus, Role
from billing.money import Money
from billing.services import daily_close, periods
from billing.services import payments as payment_service
from billing.timeutil import clinic_today
from tests.services.conftest import money_order


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def token(html: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)


def audit_events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.fixture
def last_month(make_patient):
    """A $80 money order received on the 10th of last month, that day not closed at the desk."""
    today = clinic_today()
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    day = month.replace(day=10)
    payment_service.record_money_order(make_patient(), Money.parse("80"), money_order(), received_date=day,
                                       today=today, confirm_overpayment=True)
    db.session.commit()
    return {"month": month, "key": f"{month:%Y-%m}", "day": day, "label": f"{month:%B %Y}"}


def close_form(client, key: str, reason: str | None = None, form_token: str | None = None):
    page = client.get(f"/books/periods/{key}").get_data(as_text=True)
    data = {"form_token": form_token or token(page)}
    if reason is not None:
        data["override_reason"] = reason
    return client.post(f"/books/periods/{key}/close", data=data)


def test_the_bookkeeper_sees_the_blocker_and_closes_anyway_with_a_reason(login, last_month):
    client, bookkeeper = login(Role.BOOKKEEPER)
    assert 'href="/books/periods"' in text(client.get("/books/"))
    index = text(client.get("/books/periods"))
    assert re.search(rf'data-month="{last_month["key"]}">.*?Open.*?1 blocker', index, re.S)
    page = text(client.get(f"/books/periods/{last_month['key']}"))
    assert f"{last_month['day']:%A, %m/%d/%Y} has payments or refunds and is not closed at the desk." in page
    assert f'href="/books/daily/{last_month["day"].isoformat()}"' in page
    assert f'value="Close {last_month["label"]} anyway"' in page

    refused = close_form(client, last_month["key"], "")
    assert refused.status_code == 200
    assert re.search(r'id="override_reason-help" class="field-error">[^<]*cannot be closed yet: 1 thing to settle',
                     text(refused))
    assert db.session.get(AccountingPeriod, last_month["month"]) is None
    assert audit_events("period.close") == []

    response = close_form(client, last_month["key"], "The owner counted that drawer herself")
    assert response.status_code == 302
    page = text(client.get(response.location))
    assert f"{last_month['label']} is closed (with blockers overridden" in page
    assert 'data-figure="status">Closed' in page and "The owner counted that drawer herself" in page
    period = db.session.get(AccountingPeriod, last_month["month"])
    assert (period.status, period.changed_by_id) == (PeriodStatus.CLOSED, bookkeeper.id)
    [event] = audit_events("period.close")
    assert event.actor_id == bookkeeper.id and len(event.changes["blockers_overridden"]) == 1
    assert "Reopen" not in page  # the bookkeeper does not reopen


def test_a_clean_month_closes_once_even_when_sent_twice(login, last_month):
    client, _ = login(Role.BOOKKEEPER)
    daily_close.close_day(last_month["day"], Money.parse("80"), "", today=clinic_today())
    db.session.commit()
    page = client.get(f"/books/periods/{last_month['key']}").get_data(as_text=True)
    assert "Nothing blocks the close" in unescape(page) and "override_reason" not in page
    first = client.post(f"/books/periods/{last_month['key']}/close", data={"form_token": token(page)})
    assert first.status_code == 302
    again = client.post(f"/books/periods/{last_month['key']}/close", data={"form_token": token(page)},
                        follow_redirects=True)
    assert "That form was already sent, so nothing was done twice" in text(again)
    other = client.post(f"/books/periods/{last_month['key']}/close", data={"form_token": token(page).swapcase()})
    assert other.status_code == 200 and f"{last_month['label']} was already closed by" in text(other)
    assert len(audit_events("period.close")) == 1
    assert periods.period_of(last_month["month"]).reason == ""


def test_this_month_cannot_be_closed(login):
    client, _ = login(Role.BOOKKEEPER)
    key = f"{clinic_today():%Y-%m}"
    page = text(client.get(f"/books/periods/{key}"))
    assert "is not over yet" in page and "form_token" not in page
    response = client.post(f"/books/periods/{key}/close", data={"form_token": "x" * 24})
    assert response.status_code == 200 and "is not over yet" in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccountingPeriod)) == 0
    assert client.get("/books/periods/2026-13").status_code == 404


def test_the_front_desk_is_refused(login, last_month):
    client, _ = login(Role.FRONTDESK)
    assert client.get("/books/periods").status_code == 403
    assert client.get(f"/books/periods/{last_month['key']}").status_code == 403
    assert client.post(f"/books/periods/{last_month['key']}/close",
                       data={"form_token": "x" * 24, "override_reason": "x"}).status_code == 403
    assert client.get(f"/admin/periods/{last_month['key']}/reopen").status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccountingPeriod)) == 0


def test_the_admin_reopens_with_a_reason(login, last_month):
    books, _ = login(Role.BOOKKEEPER)
    assert close_form(books, last_month["key"], "Closing for the accountant").status_code == 302
    assert books.get(f"/admin/periods/{last_month['key']}/reopen").status_code == 403

    admin, admin_user = login(Role.ADMIN)
    page = text(admin.get(f"/books/periods/{last_month['key']}"))
    assert f'href="/admin/periods/{last_month["key"]}/reopen"' in page
    assert "form_token" not in page  # the admin does not close
    url = f"/admin/periods/{last_month['key']}/reopen"
    form = admin.get(url).get_data(as_text=True)
    assert "closed anyway: Closing for the accountant" in unescape(form)
    refused = admin.post(url, data={"form_token": token(form), "reason": "  "})
    assert refused.status_code == 200 and 'id="reason-help" class="field-error"' in text(refused)
    assert periods.period_of(last_month["month"]).status == PeriodStatus.CLOSED

    response = admin.post(url, data={"form_token": token(form), "reason": "A charge of the 10th was missed"})
    assert response.status_code == 302 and response.location.endswith(f"/books/periods/{last_month['key']}")
    assert "is open again" in text(admin.get(response.location))
    period = periods.period_of(last_month["month"])
    assert (period.status, period.reason, period.changed_by_id) == (
        PeriodStatus.OPEN, "A charge of the 10th was missed", admin_user.id)
    [event] = audit_events("period.reopen")
    assert event.actor_id == admin_user.id and event.changes["reason"] == "A charge of the 10th was missed"
    # Open now: a second reopen is sent back with a message, nothing written.
    again = admin.get(url, follow_redirects=True)
    assert "is not closed; there is nothing to reopen" in text(again)
    assert len(audit_events("period.reopen")) == 1
