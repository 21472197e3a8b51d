"""The monthly reconciliation PDF, read back as text: the same figures as the page."""

import io
import re
from datetime import date

from pypdf import PdfReader

from billing.documents.reconciliation import reconciliation_pdf
from billing.reports import reconciliation as rec
from tests.services.conftest import catalog, make_patient  # noqa: F401  (fixtures)
from tests.services.test_reconciliation import march  # noqa: F401  (March 2026 built through the services)


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def test_the_month_in_the_pdf(march):
    document = reconciliation_pdf(rec.reconciliation(date(2026, 3, 1)))
    assert document.filename == "reconciliation-2026-03.pdf"
    text = pdf_text(document.pdf)
    assert "Monthly reconciliation" in text and "March 2026" in text and "REC-2026-03" in text
    assert "Card $800.00 (3) −$50.00 (1) $750.00 $600.00 $150.00 (1) $0.00 $19.45 $580.55" in text
    assert "Money order $925.00 (4) −$300.00 (1) $625.00 $450.00 $175.00 (2) $0.00 $0.00 $450.00" in text
    assert "CareCredit $2,000.00 (3) $0.00 (0) $2,000.00 $1,600.00 $400.00 (1) $0.00 $238.40 $1,361.60" in text
    assert "actual $238.40, plans' rates $188.40, difference $50.00 on 1 payment(s) (funded short)" in text
    p = march.payments
    assert f"Payment #{p['c3'].id}" in text and f"Payment #{p['k3'].id}" in text
    assert "(on hand)" in text and re.search(r"\(in DEP-2026-\d+, open\)", text)
    assert text.count("Unexplained $0.00") == 3
    assert "= Closing balance (03/31/2026) $1,075.00 Journal balance $1,075.00 Difference $0.00" in text
    assert "Trial balance on 03/31/2026" in text


def test_the_same_books_give_the_same_bytes(march):
    report = rec.reconciliation(date(2026, 3, 1))
    assert reconciliation_pdf(report).pdf == reconciliation_pdf(report).pdf
