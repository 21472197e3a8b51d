"""Numbered receipts: one per payment and one per refund or return, and the check that a receipt
still renders as it did when first issued."""

import hashlib

import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, ClinicSettings, JournalEntry, JournalLine, Payment, Receipt, Refund
from billing.money import Money
from billing.services import audit, journal, primary_key
from billing.services.numbering import next_number


_INSERT = sa.insert(Receipt.__table__)


def _issue(year: int, *, payment_id: int | None = None, refund_id: int | None = None) -> int:
    number = next_number("receipt", year, ClinicSettings.receipt_prefix)
    return db.session.execute(_INSERT, {"number": number, "payment_id": payment_id, "refund_id": refund_id,
                                        "sha256": None}).inserted_primary_key[0]


def issue_for_payment(payment: Payment) -> int:
    """Number the receipt of a payment that just succeeded, without gaps per year of its received date.
    Writes one Receipt row (inserted at once) and returns its id; the payment's own audit event covers it."""
    return _issue(payment.received_date.year, payment_id=primary_key(payment))


def issue_for_refund(refund: Refund) -> int:
    """Number the receipt of a refund or a returned money order, in the same sequence as payments
    (year of the refund date). Writes one Receipt row (inserted at once) and returns its id."""
    return _issue(refund.refund_date.year, refund_id=primary_key(refund))


def receipts_of(payment: Payment) -> list[Receipt]:
    """The payment's receipt and those of its refunds, in the order they were issued."""
    refund_ids = sa.select(Refund.id).where(Refund.payment_id == payment.id)
    return list(db.session.scalars(
        sa.select(Receipt).where(sa.or_(Receipt.payment_id == payment.id, Receipt.refund_id.in_(refund_ids)))
        .order_by(Receipt.id)
    ))


def receipt_of_payment(payment_id: int) -> Receipt | None:
    return db.session.scalar(sa.select(Receipt).where(Receipt.payment_id == payment_id))


def _posting(source: Payment | Refund) -> int | None:
    """The id of the journal entry that posted a payment or refund: the first one for it (later
    entries for the same source, such as a card fee, come after)."""
    return db.session.scalar(
        sa.select(sa.func.min(JournalEntry.id))
        .where(JournalEntry.source_type == type(source).__name__, JournalEntry.source_id == str(source.id))
    )


def _patient_ledger(code: str, patient_id: int, *, upto: int | None = None, entry: int | None = None) -> Money:
    query = sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount_cents), 0)).where(
        JournalLine.account_id == journal.account_id(code), JournalLine.patient_id == patient_id)
    if upto is not None:
        query = query.where(JournalLine.entry_id <= upto)
    if entry is not None:
        query = query.where(JournalLine.entry_id == entry)
    return Money(int(db.session.scalar(query)))


def standing_after(receipt: Receipt) -> tuple[Money, Money]:
    """The patient's (remaining balance, credit on account) right after the receipt's payment or
    refund was posted: journal lines up to its entry, so the figures never change once issued."""
    source = receipt.payment if receipt.payment_id else receipt.refund
    patient_id = receipt.payment.patient_id if receipt.payment_id else receipt.refund.payment.patient_id
    posting = _posting(source)
    if posting is None:  # not posted: cannot happen for a succeeded payment or a refund
        return Money.zero(), Money.zero()
    return (_patient_ledger(journal.RECEIVABLES, patient_id, upto=posting),
            -_patient_ledger(journal.PATIENT_CREDITS, patient_id, upto=posting))


def refund_split(refund: Refund) -> tuple[Money, Money]:
    """How a refund or return was covered: (taken out of the patient's credit, added back to what
    the patient owes), as its journal entry posted it."""
    posting = _posting(refund)
    patient_id = refund.payment.patient_id
    if posting is None:
        return Money.zero(), Money.zero()
    return (_patient_ledger(journal.PATIENT_CREDITS, patient_id, entry=posting),
            _patient_ledger(journal.RECEIVABLES, patient_id, entry=posting))


def sha256_of(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


def record_rendering(receipt: Receipt, pdf: bytes) -> bool:
    """Keep the SHA-256 of a receipt's first rendering; compare every later one to it.

    Returns True when `pdf` is the first rendering (its hash is now stored) or matches the stored
    hash, False when it differs. Writes receipts.sha256 once (flushed), guarded so two first
    downloads at once store one hash."""
    digest = sha256_of(pdf)
    if receipt.sha256 is None:
        stored = db.session.execute(
            sa.update(Receipt).where(Receipt.id == receipt.id, Receipt.sha256.is_(None)).values(sha256=digest)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.refresh(receipt, ["sha256"])
        if stored:
            return True
    return receipt.sha256 == digest


DOWNLOADED = "receipt.download"
DOWNLOADED_CHANGED = "receipt.download_changed"  # a rendering that differs from the first one


def record_download(receipt: Receipt, pdf: bytes, filename: str) -> bool:
    """Check a rendering about to be downloaded (record_rendering) and audit the download:
    receipt.download, or receipt.download_changed with both hashes when it differs. Returns
    whether it renders as issued."""
    same = record_rendering(receipt, pdf)
    changes = {"file": filename, "sha256": sha256_of(pdf)}
    if not same:
        changes["issued_sha256"] = receipt.sha256
    audit.record(DOWNLOADED if same else DOWNLOADED_CHANGED, receipt, changes=changes)
    return same


def renders_changed(receipts: list[Receipt]) -> set[int]:
    """Ids of the receipts whose latest download rendered differently from when they were issued
    (read from the audit log, where every download is recorded)."""
    if not receipts:
        return set()
    ids = [str(r.id) for r in receipts]
    latest = (sa.select(AuditEvent.entity_id, sa.func.max(AuditEvent.id).label("last"))
              .where(AuditEvent.entity_type == Receipt.__name__, AuditEvent.entity_id.in_(ids),
                     AuditEvent.action.in_((DOWNLOADED, DOWNLOADED_CHANGED)))
              .group_by(AuditEvent.entity_id).subquery())
    return {int(entity_id) for entity_id in db.session.scalars(
        sa.select(AuditEvent.entity_id).join(latest, AuditEvent.id == latest.c.last)
        .where(AuditEvent.action == DOWNLOADED_CHANGED))}
