"""The demo clinic's fee schedule, providers and CareCredit plans (used by `flask billing seed-demo`)."""

from billing.extensions import db
from billing.models import CareCreditPlan, Package, Provider, Service, ServiceCategory

# code, name, CPT/HCPCS, category, price in cents, unit, NDC
SERVICES = [
    ("CONSULT", "Initial consultation (phone)", "", ServiceCategory.VISIT, 0, "visit", ""),
    ("NP-VISIT", "New patient evaluation", "99204", ServiceCategory.VISIT, 35000, "visit", ""),
    ("EST-VISIT", "Established patient follow-up", "99214", ServiceCategory.VISIT, 17500, "visit", ""),
    ("KET-INF", "Ketamine infusion, first hour", "96365", ServiceCategory.INFUSION, 45000, "visit", ""),
    ("INF-ADDL", "Infusion, each additional hour", "96366", ServiceCategory.INFUSION, 15000, "hour", ""),
    ("CRPS-INF", "CRPS ketamine infusion, first hour", "96365", ServiceCategory.INFUSION, 65000, "visit", ""),
    ("KET-DRUG", "Ketamine HCl injection (per 10 mg)", "J3490", ServiceCategory.DRUG, 1500, "10 mg", "42023-113-10"),
    ("ONDANS", "Ondansetron injection, 1 mg", "J2405", ServiceCategory.DRUG, 500, "mg", "0409-4755-03"),
    ("BOOSTER", "Booster infusion", "96365", ServiceCategory.INFUSION, 40000, "visit", ""),
]
PROVIDERS = [
    ("Dana Whitfield", "MD", "1558444216"),
    ("Marcus Oyelaran", "CRNA", "1942377593"),
]
PLANS = [
    ("6 months no interest", 6, 750),
    ("12 months no interest", 12, 990),
    ("18 months no interest", 18, 1190),
    ("24 months no interest", 24, 1490),
    ("60 months reduced APR", 60, 780),
]


def seed_catalog() -> None:
    """Add the demo fee schedule, a six-infusion package, two providers and five CareCredit plans."""
    services = {code: Service(code=code, name=name, cpt_code=cpt, category=category, default_price_cents=price,
                              unit=unit, ndc=ndc)
                for code, name, cpt, category, price, unit, ndc in SERVICES}
    db.session.add_all(services.values())
    db.session.flush()
    db.session.add(Package(code="SERIES-6", name="Six-infusion series", service_id=services["KET-INF"].id,
                           units=6, price_cents=240000))
    db.session.add_all(Provider(name=n, credentials=c, npi=npi) for n, c, npi in PROVIDERS)
    db.session.add_all(CareCreditPlan(name=n, months=m, merchant_fee_bps=bps) for n, m, bps in PLANS)
