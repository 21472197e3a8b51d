"""Every route, every role: the access each endpoint grants is written down here.

A route added without an entry below fails `test_every_endpoint_is_listed`, and one
added without an access declaration answers 403 to everyone (see billing/access.py).
"""

import pytest
from werkzeug.routing import Rule

from billing import create_app
from billing.models import Role
from tests.conftest import log_in

PUBLIC = "public"
PATIENT = "patient"  # a portal session only (tests/web/test_portal.py signs patients in)
ANY_STAFF = frozenset(Role)
A, F, B = Role.ADMIN, Role.FRONTDESK, Role.BOOKKEEPER

EXPECTED: dict[str, object] = {
    "static": PUBLIC,
    "auth.index": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.change_password": ANY_STAFF,
    "frontdesk.home": {F},
    "books.home": {B},
    "books.stripe_import": {A, B},
    # The desk closes its days and puts money orders together for the bank; the bookkeeper can too,
    # and alone reviews a close.
    "books.daily_index": {F, B},
    "books.daily_day": {F, B},
    "books.daily_review": {B},
    "books.daily_pdf": {F, B},
    "books.deposits_index": {F, B},
    "books.deposit_new": {F, B},
    "books.deposit_detail": {F, B},
    "books.deposit_mark": {F, B},
    "books.deposit_cancel": {F, B},
    "books.deposit_batch_slip": {F, B},
    "books.bank_statements": {A, B},
    "books.bank_statement": {A, B},
    "books.bank_match": {A, B},
    "books.bank_unmatch": {A, B},
    "books.fundings_list": {A, B},
    "books.funding_new": {A, B},
    "books.funding_detail": {A, B},
    "books.fundings_unmatched": {A, B},
    "books.fundings_rematch": {A, B},
    # Reports and journal exports: amounts only, for the bookkeeper and the admin.
    "books.aging": {A, B},
    "books.aging_csv": {A, B},
    "books.revenue_report": {A, B},
    "books.revenue_csv": {A, B},
    "books.payments_report": {A, B},
    "books.payments_csv": {A, B},
    "books.refunds_report": {A, B},
    "books.refunds_csv": {A, B},
    "books.trial_balance_report": {A, B},
    "books.trial_balance_csv": {A, B},
    "books.exports": {A, B},
    "books.reconciliation": {A, B},
    "books.reconciliation_items": {A, B},
    "books.reconciliation_csv": {A, B},
    "books.reconciliation_pdf_download": {A, B},
    # Month close: the bookkeeper closes (the admin sees it); only the admin reopens a closed month.
    "books.periods_index": {A, B},
    "books.period": {A, B},
    "books.period_close": {B},
    "admin.period_reopen": {A},
    "admin.export_names_page": {A},
    "admin.home": {A},
    "admin.users_list": {A},
    "admin.user_new": {A},
    "admin.user_edit": {A},
    "admin.user_reset_password": {A},
    "admin.user_set_active": {A},
    "admin.settings": {A},
    "admin.settings_logo": {A},
    "admin.logo": ANY_STAFF,
    "admin.audit_log": {A},
    "admin.services_list": {A},
    "admin.service_new": {A},
    "admin.service_edit": {A},
    "admin.service_set_active": {A},
    "admin.packages_list": {A},
    "admin.package_new": {A},
    "admin.package_edit": {A},
    "admin.package_set_active": {A},
    "admin.providers_list": {A},
    "admin.provider_new": {A},
    "admin.provider_edit": {A},
    "admin.provider_set_active": {A},
    "admin.plans_list": {A},
    "admin.plan_new": {A},
    "admin.plan_edit": {A},
    "admin.plan_set_active": {A},
    "patients.search": {F, B},
    "patients.new": {F},
    "patients.edit": {F},
    "patients.archive": {F},
    "patients.detail": {F, B},
    "patients.checkout": {F},
    "patients.sell_package": {F},
    "patients.void_charge": {F},
    "patients.issue_invoice": {F},
    "patients.refund_package": {F, B},
    "patients.statement": {F, B},
    "patients.money_orders": {F, B},
    # Taking money orders to the bank is custody of cash: the front desk's, not the bookkeeper's,
    # who reconciles the deposit afterwards.
    "patients.deposit_slip": {F},
    "invoices.detail": {F, B},
    "invoices.void": {F, B},
    "invoices.adjust": {A, B},
    "invoices.apply_credit": {F, B},
    "invoices.pdf": {F, B},
    "payments.new": {F},
    "payments.detail": {F, B},
    "payments.refund": {F, B},
    "payments.return_": {F, B},
    # Taking a card is the front desk's; refunding one (and asking Stripe again) also the bookkeeper's.
    "payments.card": {F},
    "payments.card_status": {F},
    "payments.card_retry": {F},
    "payments.card_cancel": {F},
    "payments.card_another": {F},
    "payments.card_refund_send": {F, B},
    # The patient's pay-by-link pages: the signed token in the URL is the access.
    "pay.invoice": PUBLIC,
    "pay.card": PUBLIC,
    "pay.card_status": PUBLIC,
    "pay.card_retry": PUBLIC,
    "pay.card_another": PUBLIC,
    "pay.receipt": PUBLIC,
    "payments.receipt_pdf": {F, B},
    "invoices.email": {F, B},
    "payments.email_receipt": {F, B},
    "patients.email_statement": {F, B},
    "outbox.index": {A, F},
    "outbox.retry": {A, F},
    # Superbills and Good Faith Estimates carry diagnoses: never the bookkeeper's.
    "patients.superbill": {F},
    "estimates.new": {F},
    "estimates.detail": {F},
    "estimates.pdf": {F},
    "estimates.mark_given": {F},
    # The patient portal: its own sessions; staff are refused, anonymous visitors go to its sign-in.
    "portal.sign_in": PUBLIC,
    "portal.sign_in_link": PUBLIC,
    "portal.sign_out": PUBLIC,
    "portal.document_link": PUBLIC,  # the signed token in the URL is the access
    "portal.home": PATIENT,
    "portal.documents": PATIENT,
    "portal.invoice": PATIENT,
    "portal.invoice_download": PATIENT,
    "portal.receipt_download": PATIENT,
    "portal.estimate": PATIENT,
    "portal.estimate_download": PATIENT,
    "portal.request_document": PATIENT,
    "portal.statement_download": PATIENT,
    "portal.superbill_download": PATIENT,
    "portal.pay": PATIENT,
    "portal.pay_invoice": PATIENT,
    "portal.card": PATIENT,
    "portal.card_status": PATIENT,
    "portal.card_retry": PATIENT,
    "portal.card_another": PATIENT,
    "portal.paid": PATIENT,
    # The front desk's side of the portal (portal requests can be superbills: never the bookkeeper's).
    "patients.portal_invite": {F},
    "patients.portal_revoke": {F},
    "patients.document_link_revoke": {F, B},
    "patients.portal_requests": {F},
    "patients.portal_request_done": {F},
    # Stripe calls it unsigned-in; the signature over the body is its authentication.
    "webhooks.stripe_webhook": PUBLIC,
}

WHO = [None, A, F, B]


def _rules(app) -> list[tuple[Rule, str]]:
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def test_every_endpoint_is_listed(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - EXPECTED.keys() == set(), "new routes need an entry in EXPECTED"
    assert EXPECTED.keys() - endpoints == set(), "EXPECTED lists routes that no longer exist"


def _url(rule: Rule, target_user_id: int) -> str:
    values = {}
    for arg in rule.arguments:
        values[arg] = {"filename": "app.css", "method": "money_order"}.get(arg, target_user_id)
    return rule.build(values, append_unknown=False)[1]


@pytest.mark.parametrize("who", WHO, ids=lambda r: r.value if r else "anonymous")
def test_route_access(app, create_user, who):
    """For each route and method: allowed roles get through, others get 403, anonymous goes to sign-in
    (the portal's own for portal pages, which refuse every staff role)."""
    target = create_user(Role.FRONTDESK, name="Target")
    client = app.test_client()
    if who is not None:
        user = create_user(who, Role.ADMIN) if who is A else create_user(who)
        assert log_in(client, user).status_code == 302
    failures = []
    for rule, method in _rules(app):
        expected = EXPECTED[rule.endpoint]
        if rule.endpoint == "auth.logout":
            continue  # signing out would end the session the loop runs on; tested in test_auth
        response = client.open(_url(rule, target.id), method=method)
        signed_in_redirect = response.status_code == 302 and "/login" in response.location
        if expected == PUBLIC:
            ok = response.status_code != 403
        elif expected == PATIENT:
            portal_redirect = response.status_code == 302 and response.location.endswith("/portal/sign-in")
            ok = portal_redirect if who is None else response.status_code == 403
        elif who is None:
            ok = signed_in_redirect
        elif who in expected:
            ok = response.status_code != 403 and not signed_in_redirect
        else:
            ok = response.status_code == 403
        if not ok:
            failures.append(f"{method} {rule.rule} -> {response.status_code}")
    assert failures == []


def test_a_view_without_declared_access_is_closed(database_url):
    from config import TestingConfig

    app = create_app(type("C", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": database_url}))

    @app.route("/forgotten")
    def forgotten():
        return "secret"

    response = app.test_client().get("/forgotten")
    assert response.status_code == 403
    assert b"secret" not in response.data
