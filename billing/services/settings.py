"""Clinic settings and the logo."""

from typing import Any
from zoneinfo import available_timezones

from flask import current_app

from billing.extensions import db
from billing.models import ClinicSettings
from billing.services import ServiceError
from billing.services import audit

# Raster formats only: an SVG could carry script into every document.
LOGO_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}

EDITABLE = (
    "name", "address_line1", "address_line2", "city", "state", "postal_code",
    "phone", "email", "tin", "npi", "timezone", "invoice_prefix", "receipt_prefix",
)


def get_settings() -> ClinicSettings:
    """The clinic's settings row (created empty by the first migration)."""
    return db.session.get(ClinicSettings, 1)


def npi_is_valid(npi: str) -> bool:
    """True for a 10-digit NPI whose last digit is the Luhn check digit over '80840' + the first nine."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    digits = [int(d) for d in "80840" + npi]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


def update_settings(values: dict[str, Any]) -> None:
    """Save the editable settings and audit what changed. Raises ServiceError for an invalid
    NPI, TIN, timezone or prefix."""
    values = {k: (values[k] or "").strip() for k in EDITABLE if k in values}
    if values.get("npi") and not npi_is_valid(values["npi"]):
        raise ServiceError("An NPI has 10 digits and a valid check digit; check it on the NPPES registry.", "npi")
    tin = values.get("tin", "").replace("-", "")
    if tin and (len(tin) != 9 or not tin.isdigit()):
        raise ServiceError("A TIN (EIN) has 9 digits, like 12-3456789.", "tin")
    if tin:
        values["tin"] = f"{tin[:2]}-{tin[2:]}"
    if "timezone" in values and values["timezone"] not in available_timezones():
        raise ServiceError("Choose a timezone from the list.", "timezone")
    for key in ("invoice_prefix", "receipt_prefix"):
        if key in values and not (values[key].isalnum() and values[key].isupper()):
            raise ServiceError("Use 1–10 capital letters or digits, like INV.", key)
    settings = get_settings()
    for key, value in values.items():
        setattr(settings, key, value)
    changes = audit.changes_of(settings)
    if changes:
        audit.record("settings.update", settings, changes=changes)


def set_logo(data: bytes) -> None:
    """Store a PNG, JPEG or GIF logo. Raises ServiceError for another type or a file too large."""
    limit = current_app.config["LOGO_MAX_BYTES"]
    if len(data) > limit:
        size = f"{limit // 1024} KB" if limit >= 1024 else f"{limit} bytes"
        raise ServiceError(f"The logo must be at most {size}.", "logo")
    mime = next((m for sig, m in LOGO_SIGNATURES.items() if data.startswith(sig)), None)
    if mime is None:
        raise ServiceError("Upload a PNG, JPEG or GIF image.", "logo")
    settings = get_settings()
    settings.logo = data
    settings.logo_mime = mime
    audit.record("settings.logo", settings, changes={"logo_mime": mime, "bytes": len(data)})
