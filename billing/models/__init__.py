"""All models, imported here so Alembic and the app see every table."""

from billing.models.audit import AuditEvent
from billing.models.books import (
    BankLine, BankMatchKind, BankStatement, CareCreditFunding, CareCreditFundingLine, DailyClose, DepositBatch,
    DepositBatchItem, DepositStatus,
)
from billing.models.catalog import CareCreditPlan, Package, Provider, Service, ServiceCategory
from billing.models.documents import (
    EstimateLine, EstimateStatus, GoodFaithEstimate, OutboxMessage, OutboxStatus, Receipt,
)
from billing.models.charges import Charge, ChargeStatus, PackagePurchase
from billing.models.invoices import Invoice, InvoiceLine, InvoiceStatus
from billing.models.journal import (
    Account, AccountingPeriod, AccountMonthTotal, AccountType, Counter, JournalEntry, JournalLine, PeriodStatus,
)
from billing.models.patients import Patient
from billing.models.portal import (
    DocumentLink, DocumentLinkKind, DocumentRequest, DocumentRequestKind, DocumentRequestStatus, PortalAccount,
    PortalSignInToken,
)
from billing.models.payments import (
    Adjustment, AdjustmentKind, Allocation, CareCreditDetails, FormSubmission, MoneyOrderDetails,
    MoneyOrderIssuer, Payment, PaymentMethod, PaymentMonthFigures, PaymentStatus, Refund, RefundKind,
)
from billing.models.settings import ClinicSettings
from billing.models.stripe import (
    CardChannel, CardDetails, CardRefundRequest, CardRefundStatus, Dispute, DisputeOutcome, StripeBalanceTransaction,
    StripeEvent, StripePayout,
)
from billing.models.users import Role, User, UserRole

__all__ = [
    "BankLine", "BankMatchKind", "BankStatement", "CareCreditFunding", "CareCreditFundingLine", "DailyClose",
    "DepositBatch", "DepositBatchItem", "DepositStatus",
    "Account", "AccountingPeriod", "AccountMonthTotal", "AccountType", "Adjustment", "AdjustmentKind", "Allocation",
    "AuditEvent", "CardChannel", "CardDetails", "CardRefundRequest", "CardRefundStatus", "CareCreditDetails", "CareCreditPlan", "Charge", "ChargeStatus", "ClinicSettings",
    "Counter", "Dispute", "DisputeOutcome", "DocumentLink", "DocumentLinkKind", "DocumentRequest",
    "DocumentRequestKind", "DocumentRequestStatus", "EstimateLine", "EstimateStatus", "FormSubmission", "GoodFaithEstimate", "Invoice", "InvoiceLine", "InvoiceStatus", "JournalEntry", "JournalLine",
    "MoneyOrderDetails", "MoneyOrderIssuer", "OutboxMessage", "OutboxStatus", "Package", "PackagePurchase", "Patient", "Payment", "PaymentMonthFigures",
    "PaymentMethod", "PaymentStatus", "PeriodStatus", "PortalAccount", "PortalSignInToken", "Provider", "Receipt", "Refund", "RefundKind", "Role",
    "Service", "ServiceCategory", "StripeBalanceTransaction", "StripeEvent", "StripePayout", "User", "UserRole",
]
