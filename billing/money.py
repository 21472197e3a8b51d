"""Money as whole US cents: parsing what staff type, exact arithmetic, display.

Every amount is an ``int`` number of cents. Nothing here ever goes through
``float``; parsing works on the typed digit strings, and rates are applied
with integer arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency

__all__ = ["MAX_CENTS", "Money", "MoneyError", "format_money", "parse_money"]

#: Largest amount a person may enter, in either direction: one hundred million dollars.
MAX_CENTS = 100_000_000_00
#: Largest amount a Money holds: what a BIGINT cents column holds. Totals and report sums over many
#: payments go beyond what anyone enters.
MAX_TOTAL_CENTS = 2**63 - 1

# Digits of the dollar part of MAX_CENTS ("100000000"); longer input is too large.
_MAX_DOLLAR_DIGITS = len(str(MAX_CENTS // 100))

_SIGN_PREFIX = re.compile(r"(-)?\s*(\$)?\s*(-)?\s*(.*)", re.DOTALL)
_GROUPED_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)
_DIGITS_AND_COMMAS = re.compile(r"[0-9,]*", re.ASCII)

MSG_EMPTY = "Enter an amount, like 450.00."
MSG_LETTERS = "Enter a number, like 1,250.50 — letters are not allowed."
MSG_NOT_A_NUMBER = "Enter the amount as a number, like 1,250.50."
MSG_DOTS = "Use only one decimal point, like 1,250.50."
MSG_COMMAS = "Use commas only between thousands and a period for cents, like 1,250.50."
MSG_DECIMALS = "Enter an amount with at most two decimal places, like 450.00."
MSG_NEGATIVE = "The amount cannot be negative."
MSG_ZERO_POSITIVE = "Enter an amount greater than zero."
MSG_ZERO = "The amount cannot be zero."
MSG_TOO_LARGE = "That amount is too large. The most you can enter is $100,000,000.00."


class MoneyError(ValueError):
    """An amount that cannot be accepted; the message is shown to staff as-is."""


def _is_int(value: object) -> bool:
    """True for a real ``int`` (``bool`` and other subclasses excluded)."""
    return type(value) is int


@dataclass(frozen=True, slots=True, order=True, repr=False)
class Money:
    """An exact amount of US money, stored as whole cents."""

    cents: int

    def __post_init__(self) -> None:
        """Refuse non-int cents and amounts beyond ``MAX_TOTAL_CENTS`` (entry is capped at MAX_CENTS by parse)."""
        if not _is_int(self.cents):
            raise TypeError(
                f"Money needs an int number of cents, not {type(self.cents).__name__}"
            )
        if abs(self.cents) > MAX_TOTAL_CENTS:
            raise MoneyError("That amount is too large to keep (beyond what the database holds).")

    # -- construction -------------------------------------------------------

    @classmethod
    def zero(cls) -> Money:
        """$0.00, the start value for totals."""
        return cls(0)

    @classmethod
    def from_cents(cls, cents: int) -> Money:
        """Money from an int number of cents (e.g. a database column)."""
        return cls(cents)

    @classmethod
    def parse(
        cls, text: str | Money, *, allow_negative: bool = False, allow_zero: bool = True
    ) -> Money:
        """Money from what a person typed; see :func:`parse_money`."""
        return parse_money(text, allow_negative=allow_negative, allow_zero=allow_zero)

    # -- predicates ---------------------------------------------------------

    @property
    def is_negative(self) -> bool:
        """True for amounts below zero (refunds, credits)."""
        return self.cents < 0

    @property
    def is_zero(self) -> bool:
        """True for exactly $0.00."""
        return self.cents == 0

    @property
    def is_positive(self) -> bool:
        """True for amounts above zero."""
        return self.cents > 0

    def __bool__(self) -> bool:
        """True unless the amount is $0.00."""
        return self.cents != 0

    # -- arithmetic ---------------------------------------------------------

    def __add__(self, other: object) -> Money:
        """Sum of two Money amounts; anything else is a TypeError."""
        if isinstance(other, Money):
            return Money(self.cents + other.cents)
        return NotImplemented

    def __radd__(self, other: object) -> Money:
        """Lets plain ``sum()`` work: only the int 0 start value is accepted."""
        if _is_int(other) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Money:
        """Difference of two Money amounts; anything else is a TypeError."""
        if isinstance(other, Money):
            return Money(self.cents - other.cents)
        return NotImplemented

    def __mul__(self, units: object) -> Money:
        """The amount times a whole number of units (an int, never a float)."""
        if _is_int(units):
            return Money(self.cents * units)
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        """The same amount with the opposite sign."""
        return Money(-self.cents)

    def __pos__(self) -> Money:
        """The amount itself."""
        return self

    def __abs__(self) -> Money:
        """The amount without its sign."""
        return Money(abs(self.cents))

    def apply_rate_bps(self, bps: int) -> Money:
        """The amount times a rate in basis points (990 = 9.9%), rounded half-up.

        Halves round away from zero, so a negative amount rounds the same way
        as its positive mirror: 0.5 cent -> 1 cent and -0.5 cent -> -1 cent.
        """
        if not _is_int(bps):
            raise TypeError(f"bps must be an int, not {type(bps).__name__}")
        product = self.cents * bps
        whole, rest = divmod(abs(product), 10_000)
        if rest * 2 >= 10_000:
            whole += 1
        return Money(-whole if product < 0 else whole)

    def split(self, n: int) -> list[Money]:
        """Split into n parts that add up exactly; leftover cents go to the first parts.

        For negative amounts the first parts get the larger magnitude, mirroring
        the positive case.
        """
        if not _is_int(n):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 1:
            raise ValueError("n must be at least 1")
        sign = -1 if self.cents < 0 else 1
        base, extra = divmod(abs(self.cents), n)
        return [Money(sign * (base + (1 if i < extra else 0))) for i in range(n)]

    # -- output -------------------------------------------------------------

    def to_decimal(self) -> Decimal:
        """The exact amount in dollars as a Decimal with two places (for exports)."""
        digits = tuple(int(d) for d in str(abs(self.cents)))
        return Decimal((1 if self.cents < 0 else 0, digits, -2))

    def plain(self) -> str:
        """Dollars without symbol or grouping, like "1250.50" or "-3.05" (forms, CSV)."""
        dollars, cents = divmod(abs(self.cents), 100)
        return f"{'-' if self.cents < 0 else ''}{dollars}.{cents:02d}"

    def format(self) -> str:
        """Display text for people, like "$1,250.50" or "-$3.05"."""
        return format_currency(self.to_decimal(), "USD", locale="en_US")

    def __str__(self) -> str:
        """Display text for people; same as :meth:`format`."""
        return self.format()

    def __repr__(self) -> str:
        """Debug text like ``Money('1250.50')``."""
        return f"Money('{self.plain()}')"


def parse_money(
    text: str | Money, *, allow_negative: bool = False, allow_zero: bool = True
) -> Money:
    """Money from what a person typed, e.g. "$1,250.50"; raises MoneyError with advice.

    Accepts an optional "$", thousands commas, up to two decimals, and (with
    ``allow_negative``) a leading "-" or accounting parentheses. A value that
    is already Money is returned as-is after the same sign and zero checks.
    """
    if isinstance(text, Money):
        return _check_limits(text, allow_negative=allow_negative, allow_zero=allow_zero)
    if not isinstance(text, str):
        raise TypeError(f"parse_money needs a str, not {type(text).__name__}")

    s = text.strip()
    if not s:
        raise MoneyError(MSG_EMPTY)
    if any(ch.isalpha() for ch in s):
        raise MoneyError(MSG_LETTERS)

    parenthesised = s.startswith("(") and s.endswith(")")
    if parenthesised:
        s = s[1:-1].strip()
    minus_before, _, minus_after, number = _SIGN_PREFIX.fullmatch(s).groups()
    if (minus_before and minus_after) or (parenthesised and (minus_before or minus_after)):
        raise MoneyError(MSG_NOT_A_NUMBER)
    negative = parenthesised or bool(minus_before or minus_after)

    if number.count(".") > 1:
        raise MoneyError(MSG_DOTS)
    whole, _, fraction = number.partition(".")
    if not whole and not fraction:
        raise MoneyError(MSG_EMPTY)
    if not _DIGITS_AND_COMMAS.fullmatch(whole) or not _DIGITS_AND_COMMAS.fullmatch(fraction):
        raise MoneyError(MSG_NOT_A_NUMBER)
    if "," in fraction or ("," in whole and not _GROUPED_THOUSANDS.fullmatch(whole)):
        raise MoneyError(MSG_COMMAS)
    if len(fraction) > 2:
        raise MoneyError(MSG_DECIMALS)

    dollar_digits = whole.replace(",", "").lstrip("0")
    if len(dollar_digits) > _MAX_DOLLAR_DIGITS:
        # Also keeps huge strings away from int()'s digit limit.
        raise MoneyError(MSG_TOO_LARGE)
    cents = int(dollar_digits or "0") * 100 + int(fraction.ljust(2, "0"))
    if negative:
        cents = -cents
    if abs(cents) > MAX_CENTS:
        raise MoneyError(MSG_TOO_LARGE)
    return _check_limits(Money(cents), allow_negative=allow_negative, allow_zero=allow_zero)


def _check_limits(money: Money, *, allow_negative: bool, allow_zero: bool) -> Money:
    """Apply the caller's sign and zero rules to a parsed amount."""
    if money.is_negative and not allow_negative:
        raise MoneyError(MSG_NEGATIVE)
    if money.is_zero and not allow_zero:
        raise MoneyError(MSG_ZERO if allow_negative else MSG_ZERO_POSITIVE)
    return money


def format_money(value: Money | int | None) -> str:
    """Jinja ``money`` filter: Money or int cents -> "$1,250.50"; None -> ""."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.format()
    if _is_int(value):
        return Money(value).format()
    raise TypeError(f"format_money needs Money or int cents, not {type(value).__name__}")
