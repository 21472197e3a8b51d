"""PDF documents: every one is a Jinja template under templates/pdf/ rendered by WeasyPrint from
plain data (dicts, strings, Money; no ORM objects in templates).

One rendering path: a document function builds its data, then `render_pdf` renders it with the
clinic's letterhead. The URL fetcher refuses file: and remote URLs; the logo travels as a data: URI.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from flask import render_template
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from billing.services.settings import get_settings


@dataclass(frozen=True)
class Document:
    """A rendered PDF and the file name it is downloaded or attached as."""

    filename: str
    pdf: bytes


class RefusedURL(FatalURLFetchingError):
    """A document tried to load something other than a data: URI (rendering stops)."""


class DataOnlyFetcher(URLFetcher):
    """Loads data: URIs only; file:, http(s): and anything else stop the rendering."""

    def fetch(self, url, headers=None):
        if not url.startswith("data:"):
            raise RefusedURL(f"Documents may not load {url[:60]!r}")
        return super().fetch(url, headers)


def letterhead() -> dict[str, Any]:
    """The clinic's identity as printed at the top of every document."""
    clinic = get_settings()
    logo = None
    if clinic.logo_mime:
        logo = f"data:{clinic.logo_mime};base64,{base64.b64encode(clinic.logo).decode()}"
    return {
        "name": clinic.name, "address_lines": clinic.address_lines, "phone": clinic.phone,
        "email": clinic.email, "tin": clinic.tin, "npi": clinic.npi, "logo": logo,
    }


def w3c_date(moment: date | datetime) -> str:
    """A date, or an aware datetime in UTC to the second, as PDF metadata takes it (dcterms)."""
    if isinstance(moment, datetime):
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def render_pdf(template: str, *, document_number: str, title: str, dated: date | datetime | None = None,
               **data: Any) -> bytes:
    """Render templates/pdf/<template> (which extends pdf/base.html) to PDF bytes.

    The same data gives the same bytes: the file identifier derives from the document number and
    the creation and modification dates are `dated`, the document's own date (none when omitted),
    never the time of rendering."""
    html = render_template(f"pdf/{template}", clinic=letterhead(), document_number=document_number,
                           document_title=title, document_dated=w3c_date(dated) if dated else None, **data)
    identifier = hashlib.sha256(f"{title} {document_number}".encode()).hexdigest()[:32].encode()
    return HTML(string=html, base_url="data:,", url_fetcher=DataOnlyFetcher(allowed_protocols={"data"})).write_pdf(
        pdf_identifier=identifier)
