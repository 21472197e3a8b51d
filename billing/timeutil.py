"""The clinic's local dates: dates of service and accounting dates follow its timezone."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from billing.models.types import utcnow


def clinic_tz() -> ZoneInfo:
    from billing.services.settings import get_settings

    return ZoneInfo(get_settings().timezone)


def clinic_today() -> date:
    return utcnow().astimezone(clinic_tz()).date()


def to_clinic_time(moment: datetime) -> datetime:
    return moment.astimezone(clinic_tz())
