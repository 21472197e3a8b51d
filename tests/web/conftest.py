# The ledger factories, shared with the service tests.
from tests.services.conftest import catalog, charge, invoice_for, make_patient, pay_cc, pay_mo  # noqa: F401
