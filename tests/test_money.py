"""Tests for billing.money (the Money type) and billing.forms_fields.MoneyField."""

import ast
import dataclasses
import pathlib
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.validators import DataRequired

from billing.forms import MoneyField
from billing.money import MAX_CENTS, Money, MoneyError, format_money, parse_money

cents_st = st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS)
money_st = cents_st.map(Money)
# Small enough that any sum of three stays within MAX_CENTS.
third_st = st.integers(min_value=-(MAX_CENTS // 3), max_value=MAX_CENTS // 3).map(Money)


# -- parsing: accepted ----------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("450", 45000),
        ("450.00", 45000),
        ("450.5", 45050),
        ("450.", 45000),
        ("$1,250.50", 125050),
        (" 1250.50 ", 125050),
        ("\t$ 1250.50\n", 125050),
        ("1,250", 125000),
        ("1,000,000.01", 100000001),
        (".50", 50),
        (".5", 50),
        ("0.5", 50),
        ("0.05", 5),
        ("0", 0),
        ("0.00", 0),
        ("-0.00", 0),
        ("007.10", 710),
        ("$100,000,000.00", MAX_CENTS),
    ],
)
def test_parse_accepts(text, cents):
    assert parse_money(text) == Money(cents)
    assert Money.parse(text) == Money(cents)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("-450.00", -45000),
        ("-$1,250.50", -125050),
        ("$-1,250.50", -125050),
        ("($1,250.50)", -125050),
        ("(1,250.50)", -125050),
        ("( $5 )", -500),
        ("-.05", -5),
        ("-$100,000,000.00", -MAX_CENTS),
        ("450", 45000),
    ],
)
def test_parse_accepts_negative_when_allowed(text, cents):
    assert parse_money(text, allow_negative=True) == Money(cents)


# -- parsing: refused -----------------------------------------------------------

EMPTY = "Enter an amount, like 450.00."
DECIMALS = "at most two decimal places"
LETTERS = "letters are not allowed"
COMMAS = "commas only between thousands"
DOTS = "only one decimal point"
NOT_A_NUMBER = "as a number, like 1,250.50"
NEGATIVE = "cannot be negative"
TOO_LARGE = "too large"


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("", {}, EMPTY),
        ("   ", {}, EMPTY),
        ("$", {}, EMPTY),
        ("-", {"allow_negative": True}, EMPTY),
        (".", {}, EMPTY),
        ("()", {"allow_negative": True}, EMPTY),
        ("450.001", {}, DECIMALS),
        ("1.234", {}, DECIMALS),
        ("$1,250.505", {}, DECIMALS),
        ("12a", {}, LETTERS),
        ("abc", {}, LETTERS),
        ("1e5", {}, LETTERS),
        ("NaN", {}, LETTERS),
        ("nan", {}, LETTERS),
        ("inf", {}, LETTERS),
        ("-inf", {"allow_negative": True}, LETTERS),
        ("Infinity", {}, LETTERS),
        ("0x10", {}, LETTERS),
        ("USD 5", {}, LETTERS),
        ("1,25.00", {}, COMMAS),
        ("12,50", {}, COMMAS),
        (",250", {}, COMMAS),
        ("1,2500", {}, COMMAS),
        ("1250,", {}, COMMAS),
        ("1,,250", {}, COMMAS),
        ("1.250,50", {}, COMMAS),
        ("1.2.3", {}, DOTS),
        ("450..00", {}, DOTS),
        ("--5", {"allow_negative": True}, NOT_A_NUMBER),
        ("-$-5", {"allow_negative": True}, NOT_A_NUMBER),
        ("(-5)", {"allow_negative": True}, NOT_A_NUMBER),
        ("(5", {"allow_negative": True}, NOT_A_NUMBER),
        ("+5", {}, NOT_A_NUMBER),
        ("5-", {"allow_negative": True}, NOT_A_NUMBER),
        ("$$5", {}, NOT_A_NUMBER),
        ("5$", {}, NOT_A_NUMBER),
        ("#5", {}, NOT_A_NUMBER),
        ("1 250", {}, NOT_A_NUMBER),
        ("١٢", {}, NOT_A_NUMBER),  # Arabic-Indic digits: only 0-9 are accepted
        ("-450.00", {}, NEGATIVE),
        ("-$1,250.50", {}, NEGATIVE),
        ("($5.00)", {}, NEGATIVE),
        ("0", {"allow_zero": False}, "greater than zero"),
        ("$0.00", {"allow_zero": False}, "greater than zero"),
        ("0", {"allow_zero": False, "allow_negative": True}, "cannot be zero"),
        ("100,000,000.01", {}, TOO_LARGE),
        ("-100000000.01", {"allow_negative": True}, TOO_LARGE),
        ("1000000000", {}, TOO_LARGE),
        ("9" * 5000, {}, TOO_LARGE),  # beyond int()'s digit limit: still a MoneyError
    ],
)
def test_parse_refuses(text, kwargs, expected):
    with pytest.raises(MoneyError) as info:
        parse_money(text, **kwargs)
    message = str(info.value)
    assert expected in message
    # A sentence staff can act on, not prefixed by a field name.
    assert message[0].isupper() and message.endswith(".")
    assert not message.lower().startswith("amount")


def test_money_error_is_value_error():
    assert issubclass(MoneyError, ValueError)


@pytest.mark.parametrize("value", [450, 4.5, Decimal("4.50"), None, b"450", True])
def test_parse_refuses_non_text(value):
    with pytest.raises(TypeError):
        parse_money(value)


def test_parse_returns_money_unchanged():
    m = Money(125050)
    assert parse_money(m) is m
    assert Money.parse(m) is m
    with pytest.raises(MoneyError, match="cannot be negative"):
        parse_money(Money(-1))


# -- parsing: round trips --------------------------------------------------------

@given(money_st)
def test_parse_format_round_trip(m):
    assert parse_money(m.format(), allow_negative=True) == m
    assert parse_money(str(m), allow_negative=True) == m


@given(money_st)
def test_parse_plain_round_trip(m):
    assert parse_money(m.plain(), allow_negative=True) == m


@given(st.integers(min_value=0, max_value=MAX_CENTS).map(Money))
def test_parse_format_round_trip_non_negative_default(m):
    assert parse_money(m.format()) == m


@given(st.integers(min_value=1, max_value=MAX_CENTS).map(Money))
def test_parse_negative_refused_by_default(m):
    with pytest.raises(MoneyError, match="cannot be negative"):
        parse_money((-m).format())


# -- construction ---------------------------------------------------------------

@given(st.floats())
def test_constructor_refuses_floats(x):
    with pytest.raises(TypeError):
        Money(x)


@pytest.mark.parametrize("value", [True, False, Decimal("1"), "100", None, Fraction(1)])
def test_constructor_refuses_non_int(value):
    with pytest.raises(TypeError):
        Money(value)


def test_constructor_limits():
    # Totals (a report over a million payments) may exceed what one person can enter...
    assert Money(MAX_CENTS + 1).cents == MAX_CENTS + 1
    assert Money(2**63 - 1).cents == 2**63 - 1 and Money(-(2**63 - 1)).cents == -(2**63 - 1)
    # ...but never what a BIGINT column holds.
    for cents in (2**63, -(2**63), 10**100):
        with pytest.raises(MoneyError, match="too large"):
            Money(cents)


def test_zero_and_from_cents():
    assert Money.zero() == Money(0)
    assert Money.from_cents(125050) == Money(125050)
    with pytest.raises(TypeError):
        Money.from_cents(1.5)


def test_immutable_and_slotted():
    m = Money(5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.cents = 6
    assert not hasattr(m, "__dict__")


def test_hashable_and_equality():
    assert Money(5) == Money(5)
    assert Money(5) != Money(6)
    assert Money(5) != 5
    assert len({Money(5), Money(5), Money(6)}) == 2
    assert {Money(5): "x"}[Money(5)] == "x"


# -- arithmetic -----------------------------------------------------------------

@given(third_st, third_st, third_st)
def test_addition_is_exact_associative_commutative(a, b, c):
    assert (a + b).cents == a.cents + b.cents
    assert (a - b).cents == a.cents - b.cents
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + Money.zero() == a
    assert a - a == Money.zero()


@given(st.lists(third_st, max_size=3))
def test_sum(items):
    expected = Money(sum(m.cents for m in items))
    assert sum(items, Money.zero()) == expected
    assert sum(items) == (expected if items else 0)


def test_addition_overflow_raises():
    assert Money(MAX_CENTS) + Money(1) == Money(MAX_CENTS + 1)  # a total may pass the entry limit
    with pytest.raises(MoneyError, match="too large"):
        Money(2**63 - 1) + Money(1)


@given(money_st, st.floats())
def test_arithmetic_with_float_raises(m, x):
    for op in (
        lambda: m + x,
        lambda: x + m,
        lambda: m - x,
        lambda: x - m,
        lambda: m * x,
        lambda: x * m,
        lambda: m < x,
        lambda: m / 2,
    ):
        with pytest.raises(TypeError):
            op()


@pytest.mark.parametrize("other", [1, 0.0, Decimal("0"), Decimal("1.5"), True, "1"])
def test_arithmetic_with_non_money_raises(other):
    m = Money(100)
    with pytest.raises(TypeError):
        m + other
    with pytest.raises(TypeError):
        other + m
    with pytest.raises(TypeError):
        m - other


def test_radd_accepts_int_zero_only():
    assert 0 + Money(7) == Money(7)
    with pytest.raises(TypeError):
        False + Money(7)


def test_multiplication_by_int_units():
    assert Money(1999) * 3 == Money(5997)
    assert 3 * Money(1999) == Money(5997)
    assert Money(5) * -2 == Money(-10)
    with pytest.raises(TypeError):
        Money(5) * True
    with pytest.raises(TypeError):
        Money(5) * Decimal(2)
    with pytest.raises(TypeError):
        Money(5) * Money(2)


def test_unary_and_predicates():
    assert -Money(305) == Money(-305)
    assert +Money(305) == Money(305)
    assert abs(Money(-305)) == Money(305)
    assert Money(-1).is_negative and not Money(-1).is_zero and not Money(-1).is_positive
    assert Money(0).is_zero and not Money(0).is_negative and not Money(0).is_positive
    assert Money(1).is_positive
    assert not Money(0)
    assert Money(1) and Money(-1)


def test_ordering():
    assert Money(1) < Money(2) <= Money(2) < Money(3)
    assert Money(-5) < Money(0)
    assert max(Money(3), Money(-9), Money(7)) == Money(7)
    assert sorted([Money(3), Money(-1), Money(2)]) == [Money(-1), Money(2), Money(3)]
    with pytest.raises(TypeError):
        Money(1) < 2


# -- rates and splits -----------------------------------------------------------

def _reference_rate(cents, bps):
    """Exact half-up (away from zero) rounding of cents * bps / 10000."""
    exact = Fraction(cents * bps, 10_000)
    magnitude = int(abs(exact) + Fraction(1, 2))  # floor, since the value is >= 0
    return magnitude if exact >= 0 else -magnitude


@given(cents_st, st.integers(min_value=-10_000, max_value=10_000))
def test_apply_rate_bps_matches_reference(cents, bps):
    assert Money(cents).apply_rate_bps(bps) == Money(_reference_rate(cents, bps))


@pytest.mark.parametrize(
    ("cents", "bps", "expected"),
    [
        (100000, 990, 9900),  # 9.9% CareCredit fee on $1,000.00
        (12345, 990, 1222),  # 1222.155 -> 1222
        (50, 100, 1),  # 0.5 cent rounds up
        (-50, 100, -1),  # and away from zero for negatives
        (49, 100, 0),
        (12345, 0, 0),
        (12345, 10_000, 12345),
    ],
)
def test_apply_rate_bps_examples(cents, bps, expected):
    assert Money(cents).apply_rate_bps(bps) == Money(expected)


@pytest.mark.parametrize("bps", [9.9, Decimal("990"), True, "990"])
def test_apply_rate_bps_refuses_non_int(bps):
    with pytest.raises(TypeError):
        Money(100).apply_rate_bps(bps)


@given(money_st, st.integers(min_value=1, max_value=60))
def test_split_sums_exactly(m, n):
    parts = m.split(n)
    assert len(parts) == n
    assert sum(parts, Money.zero()) == m
    magnitudes = [abs(p.cents) for p in parts]
    assert max(magnitudes) - min(magnitudes) <= 1
    assert magnitudes == sorted(magnitudes, reverse=True)  # remainder goes first
    assert all(not p.is_negative for p in parts) or all(not p.is_positive for p in parts)


def test_split_examples():
    assert Money(1000).split(3) == [Money(334), Money(333), Money(333)]
    assert Money(-1000).split(3) == [Money(-334), Money(-333), Money(-333)]
    assert Money(2).split(4) == [Money(1), Money(1), Money(0), Money(0)]
    with pytest.raises(ValueError):
        Money(100).split(0)
    with pytest.raises(TypeError):
        Money(100).split(2.0)


# -- formatting -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("cents", "text", "plain"),
    [
        (0, "$0.00", "0.00"),
        (5, "$0.05", "0.05"),
        (125050, "$1,250.50", "1250.50"),
        (-305, "-$3.05", "-3.05"),
        (-125050, "-$1,250.50", "-1250.50"),
        (MAX_CENTS, "$100,000,000.00", "100000000.00"),
    ],
)
def test_formatting_known_values(cents, text, plain):
    m = Money(cents)
    assert m.format() == text
    assert str(m) == text
    assert f"{m}" == text
    assert m.plain() == plain
    assert format_money(m) == text
    assert format_money(cents) == text


def test_repr():
    assert repr(Money(125050)) == "Money('1250.50')"
    assert repr(Money(-5)) == "Money('-0.05')"


@given(money_st)
def test_to_decimal_is_exact(m):
    d = m.to_decimal()
    assert isinstance(d, Decimal)
    assert Fraction(d) == Fraction(m.cents, 100)
    assert d.as_tuple().exponent == -2
    assert str(d) == m.plain()


def test_format_money_filter_edge_cases():
    assert format_money(None) == ""
    for bad in (True, 1.5, Decimal("1.50"), "1.50"):
        with pytest.raises(TypeError):
            format_money(bad)


def test_module_has_no_floats():
    source = pathlib.Path(__file__).resolve().parents[1] / "billing" / "money.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float))
        assert not (isinstance(node, ast.Name) and node.id == "float")


# -- MoneyField -----------------------------------------------------------------

class ChargeForm(Form):
    amount = MoneyField("Amount")
    required = MoneyField("Required", [DataRequired()])
    refund = MoneyField("Refund", allow_negative=True)
    fee = MoneyField("Fee", allow_zero=False)


def test_money_field_good_input():
    form = ChargeForm(
        MultiDict({"amount": "$1,250.50", "required": "450", "refund": "(5.00)", "fee": "1"})
    )
    assert form.validate(), form.errors
    assert form.amount.data == Money(125050)
    assert form.required.data == Money(45000)
    assert form.refund.data == Money(-500)
    assert form.fee.data == Money(100)


def test_money_field_errors():
    form = ChargeForm(
        MultiDict({"amount": "450.001", "required": "abc", "refund": "1,25", "fee": "0"})
    )
    assert not form.validate()
    assert form.amount.data is None
    assert len(form.amount.errors) == 1
    assert "two decimal places" in form.amount.errors[0]
    # A parse error stops the other validators: one message, not two.
    assert form.required.errors == [
        "Enter a number, like 1,250.50 — letters are not allowed."
    ]
    assert "commas" in form.refund.errors[0]
    assert form.fee.errors == ["Enter an amount greater than zero."]
    # What was typed is shown back so it can be corrected.
    assert form.amount._value() == "450.001"


def test_money_field_empty_and_defaults():
    form = ChargeForm(MultiDict({"amount": "  ", "required": ""}))
    assert not form.validate()
    assert form.amount.data is None
    assert form.amount.errors == []
    assert form.refund.data is None
    assert form.required.errors  # DataRequired still applies to empty input

    form = ChargeForm(amount=Money(125050))
    assert form.amount.data == Money(125050)
    assert form.amount._value() == "1250.50"
    assert 'value="1250.50"' in form.amount()
    assert form.refund._value() == ""
