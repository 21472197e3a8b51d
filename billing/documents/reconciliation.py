"""The printable monthly reconciliation: the methods' figures, the clearing accounts item by item, the
A/R roll-forward and the trial balance, as the bookkeeper's page shows them."""

from billing.documents import Document, render_pdf
from billing.reports.reconciliation import Reconciliation


def reconciliation_pdf(report: Reconciliation) -> Document:
    """The month's reconciliation as a PDF, dated its last day (the same books give the same bytes)."""
    number = f"REC-{report.month:%Y-%m}"
    pdf = render_pdf("reconciliation.html", document_number=number, title="Monthly reconciliation",
                     dated=report.end, report=report)
    return Document(f"reconciliation-{report.month:%Y-%m}.pdf", pdf)
