"""The printable daily close: the day's payments by method, refunds and returns, the money orders
counted against those on hand, and who closed and reviewed it."""

from typing import Any

from billing.documents import Document, render_pdf
from billing.documents.receipts import method_details
from billing.models import DailyClose
from billing.money import Money
from billing.reports import daily
from billing.timeutil import to_clinic_time

WHEN = "%m/%d/%Y %-I:%M %p"


def daily_close_pdf(figures: daily.DayFigures, close: DailyClose | None) -> Document:
    """The day's close as a PDF (a preview marked "not closed" when `close` is None)."""
    day = figures.day
    number = f"DC-{day:%Y%m%d}"
    pdf = render_pdf("daily_close.html", document_number=number, title="Daily close",
                     dated=close.closed_at if close else None, report=_data(figures, close))
    return Document(f"daily-close-{day.isoformat()}.pdf", pdf)


def _data(figures: daily.DayFigures, close: DailyClose | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "day": figures.day, "payments": figures.payments, "refunds": figures.refunds,
        "received": figures.received, "refunded": figures.refunded, "net": figures.net,
        "day_payments": [{"id": p.id, "method": ", ".join(v for _, v in method_details(p)), "status": p.status.value,
                   "account": p.patient.account_number, "patient": p.patient.full_name,
                   "amount": Money(p.amount_cents)} for p in daily.day_payments(figures.day)],
        "closed": close is not None, "on_hand_now": figures.on_hand,
    }
    if close is not None:
        data.update(
            expected=Money(close.expected_cents), counted=Money(close.counted_cents),
            over_short=Money(close.counted_cents - close.expected_cents), note=close.note,
            closed_by=close.closed_by.name if close.closed_by else "", closed_at=f"{to_clinic_time(close.closed_at):{WHEN}}",
            reviewed_by=close.reviewed_by.name if close.reviewed_by else "",
            reviewed_at=f"{to_clinic_time(close.reviewed_at):{WHEN}}" if close.reviewed_at else "",
        )
    return data
