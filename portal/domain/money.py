"""Money as integer minor units plus an ISO 4217 currency; no float ever touches an amount."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

# Ten billion in major units: far above any invoice, far below a 64-bit overflow.
MAX_MAJOR_UNITS = 10_000_000_000
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,15})(\.[0-9]+)?$")
_CURRENCIES = frozenset(c for c in list_currencies() if re.fullmatch(r"[A-Z]{3}", c))


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted as given."""


def check_currency(code: object) -> str:
    if not isinstance(code, str) or code.upper() not in _CURRENCIES:
        raise MoneyError(f"unknown currency {code!r}")
    return code.upper()


@lru_cache(maxsize=None)  # every amount parsed asks; an import asks for each row
def exponent(currency: str) -> int:
    return get_currency_precision(check_currency(currency))


def parse_amount(text: object, currency: str, *, allow_zero: bool = False) -> int:
    """'1200.50' EUR -> 120050. Strings only: a JSON float would already have lost precision."""
    if not isinstance(text, str) or not _AMOUNT.match(text.strip()):
        raise MoneyError("amount must be a decimal string with a dot, like \"1200.00\"")
    # Integer arithmetic on the digits: Decimal would round beyond 28 significant digits and
    # accept "1.000000000000000000000000000001" as 1.00.
    whole, _, frac = text.strip().partition(".")
    frac = frac.rstrip("0")
    places = exponent(currency)
    if len(frac) > places:
        raise MoneyError(f"{currency} amounts have at most {places} decimals")
    minor = int(whole) * 10**places + int(frac.ljust(places, "0") or "0")
    if minor > MAX_MAJOR_UNITS * 10**places:
        raise MoneyError("amount is too large")
    if minor == 0 and not allow_zero:
        raise MoneyError("amount must be greater than zero")
    return minor


def to_decimal_string(minor: int, currency: str) -> str:
    """120050 EUR -> '1200.50' (the API's wire format)."""
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def format_money(minor: int, currency: str, locale: str = "fr") -> str:
    """For people: '1 200,50 €' in French, '€1,200.50' in English."""
    places = exponent(currency)
    return format_currency(Decimal(minor).scaleb(-places), currency, locale=locale)


@dataclass(frozen=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("Money holds integer minor units only")
        object.__setattr__(self, "currency", check_currency(self.currency))

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError("cannot mix currencies")

    def __str__(self) -> str:
        return f"{to_decimal_string(self.minor, self.currency)} {self.currency}"


@dataclass(frozen=True)
class OpenItem:
    """What allocation needs of an invoice: its key, its due date for ordering, what is left."""
    key: object
    due_date: object
    balance: int


def allocate(amount: int, items: list[OpenItem]) -> tuple[list[tuple[object, int]], int]:
    """Spread a payment over open items, oldest due date first (ties by given order).

    Returns ([(key, allocated)], unallocated remainder). Never allocates more than an
    item's balance, never a zero line; the sum of lines plus the remainder equals `amount`.
    """
    if amount < 0:
        raise MoneyError("cannot allocate a negative amount")
    lines = []
    left = amount
    for item in sorted(items, key=lambda i: i.due_date):
        if left == 0:
            break
        take = min(left, item.balance)
        if take > 0:
            lines.append((item.key, take))
            left -= take
    return lines, left
