"""The demo clinic (used by `flask billing seed-demo`): its fee schedule, providers and CareCredit plans,
and a few months of patients, visits, invoices and payments, and the bookkeeper's side of them (Stripe
payouts, money-order deposits, CareCredit fundings, daily closes)."""

import heapq
import itertools
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AdjustmentKind, CardChannel, CareCreditPlan, MoneyOrderIssuer, Package, Provider, Service, ServiceCategory,
    StripePayout,
)
from billing.money import Money
from billing.reports.money_orders import money_orders_on_hand, on_hand_total
from billing.services import card_payments, charges as charges_service, daily_close, deposits, fundings
from billing.services import invoices as invoices_service, patients as patients_service, payments as payments_service
from billing.services import payouts
from billing.services.balances import invoice_balance
from billing.services.charges import ChargeInput
from billing.services.fundings import FundingInput, LineInput
from billing.services.payments import CareCreditInput, MoneyOrderInput
from billing.timeutil import clinic_tz

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


# --- A few months of activity ---------------------------------------------------------------------

FIRST_NAMES = (
    "Emma", "Olivia", "Ava", "Sophia", "Abigail", "Emily", "Hannah", "Grace", "Chloe", "Lily", "Natalie", "Megan",
    "Rachel", "Sarah", "Laura", "Karen", "Linda", "Susan", "Heather", "Amanda", "Jessica", "Brenda", "Diane",
    "Liam", "Noah", "Owen", "Caleb", "Ethan", "Lucas", "Mason", "Wyatt", "Henry", "Jacob", "Nathan", "Ryan",
    "Michael", "David", "James", "Robert", "Thomas", "Daniel", "Kevin", "Brian", "Gary", "Scott", "Peter", "Paul",
)
LAST_NAMES = (
    "Thibodeau", "Pelletier", "Michaud", "Ouellette", "Gagnon", "Cyr", "Levesque", "Dubois", "Bouchard", "Martin",
    "Smith", "Johnson", "Brown", "Davis", "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Morin", "Bernier", "Theriault",
    "Libby", "Hamlin", "Larrabee", "Coffin", "Dyer", "Pinkham", "Sawyer",
)
STREETS = (
    "Congress Street", "Forest Avenue", "Brighton Avenue", "Main Street", "Elm Street", "Pleasant Street",
    "Ocean Avenue", "Pine Street", "Oak Street", "Maple Street", "Spring Street", "High Street", "School Street",
    "Bridge Street", "Washington Avenue", "Stevens Avenue", "Cumberland Avenue", "Shore Road", "Route 1",
    "Gray Road", "River Road", "Middle Street", "Water Street", "Union Street",
)
# city, ZIP code
MAINE_TOWNS = (
    ("Portland", "04101"), ("Portland", "04102"), ("Portland", "04103"), ("South Portland", "04106"),
    ("Westbrook", "04092"), ("Scarborough", "04074"), ("Falmouth", "04105"), ("Yarmouth", "04096"),
    ("Brunswick", "04011"), ("Bath", "04530"), ("Biddeford", "04005"), ("Saco", "04072"),
    ("Lewiston", "04240"), ("Auburn", "04210"), ("Augusta", "04330"), ("Gorham", "04038"),
    ("Windham", "04062"), ("Freeport", "04032"), ("Kennebunk", "04043"), ("Cape Elizabeth", "04107"),
    ("Bangor", "04401"),
)
DEPRESSION_CODES = ("F33.2", "F33.1", "F32.9", "F32.A")
CRPS_CODES = ("G90.511", "G90.512", "G90.521", "G90.522")
CARD_BRANDS = ("visa", "visa", "visa", "mastercard", "mastercard", "amex", "discover")
CARD_SHARE = 0.45  # of payments
PAYOUT_WEEKDAY = 1  # Stripe pays out on Tuesdays...
PAYOUT_AFTER = 2  # ...the card payments at least this many business days old
BATCH_WEEKDAY = 3  # the money orders on hand are put in a batch on Thursdays, deposited the next business day
FUNDING_AFTER = 2  # CareCredit funds two business days after a charge
OPEN_DAYS = 2  # the last days are left open at the desk
COURTESY_REASONS = ("Courtesy discount: infusion started over an hour late.",
                    "Courtesy discount: hardship, approved by Dr. Whitfield.")


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, min(day.day, 28))


def seed_activity(rng: random.Random, *, today: date, months: int = 3, patients: int = 40,
                  progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Register `patients` patients and play `months` months of clinic life up to yesterday through the
    services (charges, invoices after each visit, card payments, money orders, CareCredit, an overpayment or
    two kept as credit, a refund by check, a courtesy discount; some invoices left open) and the books
    (weekly Stripe payouts, weekly money-order deposits, CareCredit fundings two business days after each
    charge, a daily close for every weekday but the last two). Only `rng` is random and
    `today` (the clinic's) is the only clock, so a seed always gives the same clinic. Flushes; the
    caller commits. Returns the counts of what it made."""
    stats = {"patients": 0, "charges": 0, "invoices": 0, "payments": 0, "months": months, "card_payments": 0,
             "payouts": 0, "deposits": 0, "fundings": 0, "daily_closes": 0}
    start = _months_before(today, months)
    days = [start + timedelta(n) for n in range((today - start).days)]
    days = [d for d in days if d.weekday() < 5]  # past weekdays, today excluded
    if patients <= 0 or len(days) < 10:
        return stats
    services = {s.code: s for s in db.session.scalars(sa.select(Service))}
    series = db.session.scalar(sa.select(Package).where(Package.code == "SERIES-6"))
    doctor, crna = (db.session.scalar(sa.select(Provider).where(Provider.name == n)) for n, _, _ in PROVIDERS)
    plans = list(db.session.scalars(sa.select(CareCreditPlan).order_by(CareCreditPlan.months)))
    tz = clinic_tz()

    # Who comes, and when: every visit is an event (weekday index, order, sequence, kind, payload).
    events: list[tuple] = []
    sequence = itertools.count()

    def at(index: int, order: int, kind: str, *payload) -> None:
        if index < len(days):  # later than yesterday: it has not happened yet
            heapq.heappush(events, (index, order, next(sequence), kind, payload))

    people = []
    names = set()
    for n in range(patients):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        while (first, last) in names:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        names.add((first, last))
        age = rng.randint(22, 78)
        city, postal = rng.choice(MAINE_TOWNS)
        values = {
            "first_name": first, "last_name": last,
            "date_of_birth": date(today.year - age, 1, 1) + timedelta(rng.randrange(365)),
            "email": f"{first}.{last}{rng.choice(('', '', str(rng.randint(1, 99))))}@example.com",
            "phone": f"(207) 555-{rng.randint(100, 199):04d}",
            "address_line1": f"{rng.randint(2, 980)} {rng.choice(STREETS)}",
            "address_line2": f"Apt {rng.randint(1, 12)}" if rng.random() < 0.2 else "",
            "city": city, "state": "ME", "postal_code": postal,
        }
        roll = rng.random()
        kind = "consult" if roll < 0.1 else "crps" if roll < 0.3 else "depression"
        person = {
            "values": values, "kind": kind, "weight": rng.randint(52, 115), "last4": f"{rng.randrange(10000):04d}",
            "codes": [rng.choice(CRPS_CODES if kind == "crps" else DEPRESSION_CODES)], "package": False,
            "purchaser": f"{first} {last}" if rng.random() < 0.8 else f"{rng.choice(FIRST_NAMES)} {last}",
        }
        people.append(person)
        begin = person["begin"] = rng.randrange(0, max(1, len(days) - 8))
        at(begin, 0, "consult", person)
        if kind == "consult":
            continue
        visit = begin + rng.randint(2, 8)
        at(visit, 0, "np", person)
        if kind == "crps":  # a loading run on consecutive weekdays, then monthly boosters
            visit += rng.randint(3, 8)
            for _ in range(rng.randint(3, 5)):
                at(visit, 0, "crps", person)
                visit += 1
            while (visit := visit + rng.randint(18, 24)) < len(days):
                at(visit, 0, "crps", person)
        else:  # six infusions over two to three weeks, then boosters
            visit += rng.randint(1, 5)
            for _ in range(6):
                at(visit, 0, "infusion", person)
                visit += rng.randint(2, 3)
            while (visit := visit + rng.randint(15, 30)) < len(days):
                at(visit, 0, "booster", person)
    # A couple of early depression patients buy the six-infusion series up front.
    early = [p for p in people if p["kind"] == "depression" and p["begin"] < len(days) // 3]
    early = early or [p for p in people if p["kind"] == "depression"]
    for person in rng.sample(early, min(2, len(early))):
        person["package"] = True

    for person in people:
        person["patient"] = patients_service.create_patient(person["values"], today=today)
        stats["patients"] += 1
    db.session.flush()
    if progress:
        progress(f"Registered {stats['patients']} patients; playing {months} months of visits...")

    def charge(person, code, day, *, units=1, provider=None, start=None, minutes=0, use_package=False):
        data = ChargeInput(service=services[code], date_of_service=day, units=units, provider=provider,
                           icd10_codes=person["codes"], use_package=use_package)
        if start is not None:
            data.infusion_start = datetime.combine(day, start, tz)
            data.infusion_stop = data.infusion_start + timedelta(minutes=minutes)
        charges_service.post_charge(person["patient"], data, today=today)
        stats["charges"] += 1

    def infusion(person, day, code, extra_hours, dose_mg_per_kg, use_package=False):
        start = time(rng.randint(8, 14), rng.choice((0, 15, 30, 45)))
        # 40-55 minutes; each additional hour billed is more than 30 minutes past the previous one
        minutes = 60 * extra_hours + rng.randint(35, 60) if extra_hours else rng.randint(40, 55)
        charge(person, code, day, provider=crna, start=start, minutes=minutes, use_package=use_package)
        if extra_hours:
            charge(person, "INF-ADDL", day, units=extra_hours, provider=crna)
        dose = min(24, max(2, round(person["weight"] * dose_mg_per_kg / 10)))
        charge(person, "KET-DRUG", day, units=dose, provider=crna)
        if rng.random() < 0.5:
            charge(person, "ONDANS", day, units=4, provider=crna)

    money_orders = itertools.count(1)
    invoices_issued = itertools.count(1)
    serials = set()

    def invoice_visit(person, index: int) -> None:
        day = days[index]
        invoice = invoices_service.issue_invoice(person["patient"], today=day)
        stats["invoices"] += 1
        if not invoice.total_cents:
            return
        number = next(invoices_issued)
        if number == 9:  # one courtesy discount, the rest paid
            _courtesy(invoice, day)
        if rng.random() < 0.15:
            return  # left open: aging has something to show
        at(index + (0 if rng.random() < 0.6 else rng.randint(1, 10)), 1, "pay", person, invoice)

    def _courtesy(invoice, day) -> None:
        amount = min(Money(rng.choice((2500, 5000, 7500))), invoice_balance(invoice))  # credit may have paid some
        if not amount.is_positive:
            return
        payments_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, amount, rng.choice(COURTESY_REASONS),
                                        today=day)

    def pay(person, invoice, index: int) -> None:
        day = days[index]
        due = invoice_balance(invoice)
        if not due.is_positive:
            return
        apply_to = [(invoice.id, due)]
        if rng.random() < CARD_SHARE:
            card(person, invoice, due, index)
            return
        if due.cents > 100000 or rng.random() < 0.4:
            code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
            plan = plans[0] if due.cents < 100000 else rng.choice(plans[1:4] if due.cents < 250000 else plans[3:])
            payment = payments_service.record_carecredit(
                person["patient"], due, CareCreditInput(code, plan, person["last4"], True, True),
                received_date=day, today=today, apply_to=apply_to)
            stats["payments"] += 1
            to_fund.setdefault(index + FUNDING_AFTER, []).append((payment, code, plan, day))
            return
        issuer = rng.choices((MoneyOrderIssuer.USPS, MoneyOrderIssuer.WESTERN_UNION, MoneyOrderIssuer.MONEYGRAM),
                             weights=(6, 2, 2))[0]
        digits = 10 if issuer == MoneyOrderIssuer.WESTERN_UNION else 11
        serial = None
        while serial is None or (issuer, serial) in serials:
            serial = str(rng.randrange(10 ** (digits - 1), 10 ** digits))
        serials.add((issuer, serial))
        number = next(money_orders)
        overpaid = number in (3, 8, 16)  # the first is refunded by check, the others stay as credit
        amount = Money((due.cents // 5000 + 1) * 5000) if overpaid else due
        payment = payments_service.record_money_order(
            person["patient"], amount, MoneyOrderInput(issuer, serial, person["purchaser"], True, True, True),
            received_date=day, today=today, apply_to=apply_to, confirm_overpayment=overpaid)
        stats["payments"] += 1
        if number == 3:
            at(min(index + rng.randint(2, 4), len(days) - 1), 2, "refund", payment, amount - due)

    def card(person, invoice, amount: Money, index: int) -> None:
        """A card payment at the desk, and Stripe's payment_intent.succeeded for it."""
        day = days[index]
        payment = card_payments.start(person["patient"], amount, invoice=invoice, channel=CardChannel.DESK, today=day)
        n = next(card_numbers)
        intent = {
            "id": f"pi_demo_{n}", "object": "payment_intent", "amount": amount.cents, "amount_capturable": 0,
            "amount_received": amount.cents, "capture_method": "automatic_async", "confirmation_method": "automatic",
            "created": _stamp(day), "currency": "usd", "customer": None, "description": None,
            "last_payment_error": None, "livemode": False, "metadata": {"app_payment_id": str(payment.id)},
            "next_action": None, "payment_method": f"pm_demo_{n}", "payment_method_types": ["card"],
            "status": "succeeded",
            "latest_charge": {
                "id": f"ch_demo_{n}", "object": "charge", "amount": amount.cents, "currency": "usd",
                "payment_intent": f"pi_demo_{n}", "status": "succeeded", "paid": True,
                "payment_method_details": {"type": "card", "card": {
                    "brand": rng.choice(CARD_BRANDS), "last4": f"{rng.randrange(10000):04d}",
                    "exp_month": rng.randint(1, 12), "exp_year": today.year + rng.randint(1, 5)}},
            },
        }
        card_payments.intent_succeeded(intent, today=day)
        stats["payments"] += 1
        stats["card_payments"] += 1
        unpaid_charges.append((index, f"ch_demo_{n}", amount.cents))

    def payout(index: int) -> None:
        """Stripe's weekly payout of the card payments at least PAYOUT_AFTER business days old."""
        ready = [c for c in unpaid_charges if c[0] <= index - PAYOUT_AFTER]
        if not ready:
            return
        unpaid_charges[:] = [c for c in unpaid_charges if c[0] > index - PAYOUT_AFTER]
        day, n = days[index], next(payout_numbers)
        transactions, net_total = [], 0
        for charged, charge_id, gross in ready:
            fee = (gross * 29 + 500) // 1000 + 30  # 2.9 % rounded half up, plus 30 cents
            net_total += gross - fee
            transactions.append({
                "id": f"txn_demo_{charge_id.removeprefix('ch_demo_')}", "object": "balance_transaction",
                "type": "charge", "reporting_category": "charge", "source": charge_id, "amount": gross, "fee": fee,
                "net": gross - fee, "currency": "usd", "description": "Card payment at the desk",
                "created": _stamp(days[charged]), "available_on": _stamp(days[min(charged + PAYOUT_AFTER, index)]),
                "status": "available"})
        payout_id = f"po_demo_{n}"
        transactions.append({
            "id": f"txn_demo_po_{n}", "object": "balance_transaction", "type": "payout",
            "reporting_category": "payout", "source": payout_id, "amount": -net_total, "fee": 0, "net": -net_total,
            "currency": "usd", "description": "STRIPE PAYOUT", "created": _stamp(day), "available_on": _stamp(day),
            "status": "available"})
        row = StripePayout(payout_id=payout_id, amount_cents=net_total, arrival_date=day, source="api", posted=False)
        db.session.add(row)
        db.session.flush()
        payouts.post_payout(row, transactions)
        stats["payouts"] += 1

    def deposit(index: int) -> None:
        """Deposit last week's batch, and put the money orders on hand in this week's."""
        day = days[index]
        for batch in open_batches:
            deposits.mark_deposited(batch, day, f"DEMO-{batch.number}", today=today)
        open_batches.clear()
        if day.weekday() != BATCH_WEEKDAY:
            return
        on_hand = [p.id for p in money_orders_on_hand()]
        if on_hand:
            open_batches.append(deposits.create_batch(on_hand, today=day))
            stats["deposits"] += 1

    def fund(index: int) -> None:
        """CareCredit's funding of the charges taken FUNDING_AFTER business days ago."""
        taken = to_fund.pop(index, [])
        if not taken:
            return
        lines = [LineInput(code, Money(p.amount_cents), Money((p.amount_cents * plan.merchant_fee_bps + 5000) // 10000),
                           transaction_date=day, promo_code=f"{plan.months}M")
                 for p, code, plan, day in taken]
        net = sum((line.gross - line.fee for line in lines), Money.zero())
        fundings.record_funding(FundingInput(f"CCF-DEMO-{days[index]:%Y%m%d}", days[index], net, lines), today=today)
        stats["fundings"] += 1

    def books(index: int) -> None:
        """The start of a business day: yesterday's close, then the day's payout, deposit and funding."""
        if days[index].weekday() == PAYOUT_WEEKDAY:
            payout(index)
        deposit(index)
        fund(index)

    def close(index: int) -> None:
        if index < len(days) - OPEN_DAYS:
            counted = on_hand_total()
            daily_close.close_day(days[index], counted, "", today=today)
            stats["daily_closes"] += 1

    card_numbers = itertools.count(1)
    payout_numbers = itertools.count(1)
    unpaid_charges: list[tuple[int, str, int]] = []  # (day index, charge id, gross cents) not yet paid out
    open_batches: list = []
    to_fund: dict[int, list] = {}  # day index -> CareCredit payments funded that day
    for index in range(len(days)):
        at(index, -1, "books")
    current = 0
    while events:
        index, _, _, kind, payload = heapq.heappop(events)
        day = days[index]
        while current < index:  # every event of the day before was played: close it
            close(current)
            current += 1
        if kind == "books":
            books(index)
        if kind == "consult":
            charge(payload[0], "CONSULT", day, provider=doctor)
        elif kind == "np":
            person = payload[0]
            charge(person, "NP-VISIT", day, provider=doctor)
            if person["package"]:
                charges_service.sell_package(person["patient"], series, date_of_service=day, today=today,
                                             provider=doctor)
                stats["charges"] += 1
                person["units_left"] = series.units
            invoice_visit(person, index)
        elif kind in ("infusion", "booster"):
            person = payload[0]
            prepaid = kind == "infusion" and person.get("units_left", 0) > 0
            if prepaid:
                person["units_left"] -= 1
            infusion(person, day, "KET-INF" if kind == "infusion" else "BOOSTER",
                     1 if rng.random() < 0.12 else 0, 0.5, use_package=prepaid)
            invoice_visit(person, index)
        elif kind == "crps":
            infusion(payload[0], day, "CRPS-INF", rng.randint(1, 3), rng.choice((1.0, 1.5, 2.0)))
            invoice_visit(payload[0], index)
        elif kind == "pay":
            pay(*payload, index)
        elif kind == "refund":
            payment, amount = payload
            payments_service.refund_payment(
                payment, amount, "Overpaid by money order; the difference was refunded by clinic check.",
                today=day, check_number=str(rng.randint(1040, 1099)))
    db.session.flush()
    return stats


def _stamp(day: date) -> int:
    """A Stripe timestamp: midnight UTC of `day`."""
    return int(datetime.combine(day, time(), UTC).timestamp())
